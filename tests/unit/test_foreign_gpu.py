"""GPU processes tuxai did not start: found on NVML and on a simulated inventory, owned or foreign (issue 13)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import fake_pynvml
from tests.sysfs_tree import write
from tuxai.errors import InventoryError
from tuxai.hardware.simulated import DeclaredProcess, inventory_from_yaml, simulated_processes
from tuxai.model.gpu import Gpu, Vendor
from tuxai.telemetry.foreign import busy_outside, foreign_processes, parent_pid, process_uid
from tuxai.telemetry.samplers import AmdSysfsSampler, NvmlSampler, SimulatedSampler
from tuxai.telemetry.samples import GpuProcess, GpuSample

BOX = "gpus: {model: NVIDIA A100-SXM4-80GB, count: 2, memory: 80GiB}\n"


def test_a_simulated_inventory_declares_processes_outside_tuxai() -> None:
    text = BOX + "processes: [{gpu: 1, pid: 4242, user: alice, memory: 2GiB}]\n"
    inventory_from_yaml(text)
    assert simulated_processes(text) == (DeclaredProcess(1, 4242, "alice", 2 * 1024**3),)
    with pytest.raises(InventoryError, match="processes: no GPU 5"):
        inventory_from_yaml(BOX + "processes: [{gpu: 5, pid: 1}]\n")
    with pytest.raises(InventoryError, match=r"processes\[0\].pid"):
        inventory_from_yaml(BOX + "processes: [{gpu: 0, pid: x}]\n")
    gpus = list(inventory_from_yaml(text).gpus)
    (_, busy) = SimulatedSampler(gpus, simulated_processes(text)).sample(1.0, {})
    assert busy.processes == (GpuProcess(4242, 2 * 1024**3, None, "alice"),)
    assert busy.memory_used_bytes == 2 * 1024**3


def test_nvml_compute_processes_reach_the_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fake_pynvml.STATE, "init_error", None)
    monkeypatch.setitem(fake_pynvml.STATE, "processes", [(os.getpid(), 512 * 1024**2)])
    monkeypatch.setattr(fake_pynvml, "nvmlDeviceGetMemoryInfo", lambda handle: None)  # the probe's fake has no "used"
    (sample,) = NvmlSampler(fake_pynvml).sample(1.0, {})
    assert [(p.pid, p.memory_bytes) for p in sample.processes] == [(os.getpid(), 512 * 1024**2)]
    (found,) = foreign_processes([sample], jobs_pids=())
    assert (found.gpu_index, found.pid, found.memory_bytes) == (0, os.getpid(), 512 * 1024**2)


def test_a_jobs_process_and_its_children_are_not_foreign_others_are_with_their_user() -> None:
    shell = subprocess.Popen(["sh", "-c", f"{sys.executable} -c 'import time; time.sleep(30)'"])
    try:
        child = None
        for _ in range(200):
            children = Path(f"/proc/{shell.pid}/task/{shell.pid}/children").read_text().split()
            if children:
                child = int(children[0])
                break
            subprocess.run(["sleep", "0.02"], check=True)
        assert child is not None and parent_pid(child) == shell.pid
        sample = GpuSample(3, None, 1.0, processes=(GpuProcess(child), GpuProcess(999_999_999, user="alice")))
        owned_by_job = foreign_processes([sample], jobs_pids=[shell.pid])
        assert [p.pid for p in owned_by_job] == [999_999_999]  # the job's child is its own; the unseen pid is not
        assert owned_by_job[0].user == "alice"  # /proc does not show it: the declared user
        everything = foreign_processes([sample], jobs_pids=[])
        me = pwd.getpwuid(os.getuid()).pw_name
        assert process_uid(child) == os.getuid() and everything[0].user == me  # /proc's uid, by name
        assert busy_outside(everything) == {3: ", ".join(sorted([f"pid {child} of {me}", "pid 999999999 of alice"]))}
    finally:
        shell.kill()
        shell.wait()


def test_amd_compute_processes_come_from_kfd(tmp_path: Path) -> None:
    device = "/sys/class/drm/card0/device"
    write(tmp_path, f"{device}/gpu_busy_percent", "12")
    (tmp_path / device.lstrip("/") / "drm/renderD128").mkdir(parents=True)
    write(tmp_path, "/sys/class/kfd/kfd/topology/nodes/0/gpu_id", "0")  # the CPU's node
    write(tmp_path, "/sys/class/kfd/kfd/topology/nodes/0/properties", "cpu_cores_count 64\ndrm_render_minor 0")
    write(tmp_path, "/sys/class/kfd/kfd/topology/nodes/1/gpu_id", "43110")
    write(tmp_path, "/sys/class/kfd/kfd/topology/nodes/1/properties", "simd_count 440\ndrm_render_minor 128")
    write(tmp_path, "/sys/class/kfd/kfd/proc/4242/vram_43110", str(3 * 1024**3))
    write(tmp_path, "/sys/class/kfd/kfd/proc/77/vram_99999", "1")  # a process on another GPU
    gpu = Gpu(Vendor.AMD, 0, "AMD Instinct MI250X", uuid="GPU-7a")
    (sample,) = AmdSysfsSampler([gpu], tmp_path).sample(1.0, {})
    assert sample.processes == (GpuProcess(4242, 3 * 1024**3),)
    (found,) = foreign_processes([sample], jobs_pids=(), proc=tmp_path / "proc")
    assert (found.pid, found.user, found.memory_bytes) == (4242, "", 3 * 1024**3)
    assert found.words() == "pid 4242"  # its user unseen: no guess


def test_a_process_on_a_mig_instance_names_that_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fake_pynvml.STATE, "init_error", None)
    monkeypatch.setattr(fake_pynvml, "nvmlDeviceGetMemoryInfo", lambda handle: None)
    processes = [SimpleNamespace(pid=999_999_991, usedGpuMemory=1, gpuInstanceId=5), SimpleNamespace(pid=999_999_992)]
    monkeypatch.setattr(fake_pynvml, "nvmlDeviceGetComputeRunningProcesses", lambda handle: processes)
    (sample,) = NvmlSampler(fake_pynvml).sample(1.0, {})
    assert [p.gpu_instance_id for p in sample.processes] == [5, None]  # NVML's 0xFFFFFFFF: no instance
    found = foreign_processes([sample], jobs_pids=(), instances={(0, 5): 2})
    assert [(p.pid, p.mig_index) for p in found] == [(999_999_991, 2), (999_999_992, None)]
    assert busy_outside(found) == {(0, 2): "pid 999999991", 0: "pid 999999992"}
    text = BOX.replace("count: 2", "count: 2, mig: {0: {1g.10gb: 7}}") + "processes: [{gpu: 0, mig: 3, pid: 7}]\n"
    gpus = list(inventory_from_yaml(text).gpus)
    (on_mig, _) = SimulatedSampler(gpus, simulated_processes(text)).sample(1.0, {})
    assert on_mig.processes[0].gpu_instance_id == gpus[0].mig_devices[3].gpu_instance_id
    with pytest.raises(InventoryError, match="GPU 1 has no MIG instance 0"):
        inventory_from_yaml(BOX + "processes: [{gpu: 1, mig: 0, pid: 7}]\n")
