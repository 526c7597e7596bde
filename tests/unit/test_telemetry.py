"""Telemetry's pure parts and samplers: NVML replayed, AMD and RAPL from fake sysfs trees, energy, detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.fake_nvml_series import FakeNvmlSeries
from tuxai.model.gpu import Gpu, Vendor
from tuxai.telemetry.detection import DetectionConfig, Watch
from tuxai.telemetry.energy import EnergyMeter, Holding, JobEnergy, attribute_cpu, attribute_gpus, totals
from tuxai.telemetry.procfs import parse_io, parse_stat
from tuxai.telemetry.prometheus import JobRow, MetricsView, render
from tuxai.telemetry.rapl import counter_delta, read_rapl
from tuxai.telemetry.samplers import AmdSysfsSampler, NvmlSampler, SimulatedSampler
from tuxai.telemetry.samples import GpuProcess, GpuSample, JobUsage

SERIES = FIXTURES / "nvml-samples" / "a100x2-train-6s.json"


def test_nvml_sampler_reads_every_field_and_energy_by_counter_or_power() -> None:
    fake = FakeNvmlSeries(SERIES)
    sampler = NvmlSampler(fake)
    meter = EnergyMeter()
    energy: dict[int, list[tuple[float, str]]] = {0: [], 1: []}
    seen = []
    for tick in fake.ticks:
        samples = sampler.sample(tick["at"], {})
        seen.append(samples)
        for index, value in meter.step(samples).items():
            energy[index].append(value)
        fake.advance() if fake.tick < len(fake.ticks) - 1 else None
    busy = seen[2][0]
    assert (busy.util_pct, busy.memory_used_bytes, busy.power_w, busy.temperature_c) == (99.0, 61 * 2**30, 320.0, 61)
    assert (busy.sm_clock_mhz, busy.memory_clock_mhz, busy.power_limit_w, busy.uuid) == (
        1410, 1593, 400.0, "GPU-1c7a1d2e-0000-4000-8000-000000000000"
    )  # fmt: skip
    assert busy.processes == (GpuProcess(4101, 60 * 2**30, 99.0),)
    assert seen[3][0].throttle_reasons == 4 and busy.ecc_uncorrected == 0
    assert seen[1][1].energy_j is None  # GPU 1 has no counter in this series
    # GPU 0: the counter's deltas (mJ → J); GPU 1: trapezoids of power.
    assert [round(j, 3) for j, _ in energy[0]] == [190.0, 315.0, 319.0, 204.0, 75.0]
    assert {m for _, m in energy[0]} == {"counter"}
    assert [round(j, 3) for j, _ in energy[1]] == [130.0, 230.0, 260.0, 260.0, 160.0]
    assert {m for _, m in energy[1]} == {"power integral"}


def test_attribution_exclusive_shared_and_mig() -> None:
    energy = {0: (300.0, "counter"), 1: (200.0, "power integral"), 2: (100.0, "counter")}
    holdings = [
        Holding(7, 0),
        Holding(8, 1, milli=500),
        Holding(9, 1, milli=500),
        Holding(10, 2, milli=1000, mig=True),
    ]
    processes = {1: (GpuProcess(81, None, 30.0), GpuProcess(91, None, 10.0))}
    pids = {7: frozenset({71}), 8: frozenset({81}), 9: frozenset({91}), 10: frozenset()}
    jobs = attribute_gpus(energy, holdings, processes, pids, elapsed_s=2.0)
    assert jobs[7].gpu_j == 300.0 and jobs[7].methods == {"gpu0": "counter"} and jobs[7].gpu_s == 2.0
    assert (jobs[8].gpu_j, jobs[9].gpu_j) == (150.0, 50.0)
    assert jobs[8].methods["gpu1"] == "power integral, shared, split by utilization" and jobs[8].gpu_s == 1.0
    assert jobs[10].gpu_j == 0.0 and jobs[10].methods == {"gpu2": "not attributable (MIG instance)"}
    by_slice = attribute_gpus(energy, holdings[1:3], {}, pids, elapsed_s=2.0)
    assert by_slice[8].gpu_j == 100.0 and "split by slice" in by_slice[8].methods["gpu1"]


def test_cpu_energy_by_rapl_share_or_labelled_estimate() -> None:
    assert attribute_cpu(100.0, 4.0, {1: 1.0, 2: 3.0}, 10.0) == {1: (25.0, "rapl"), 2: (75.0, "rapl")}
    (joules, method), = attribute_cpu(None, 4.0, {1: 2.0}, 10.0).values()  # fmt: skip
    assert joules == 20.0 and method == "estimate (10 W per busy CPU, no RAPL)"


def test_totals_in_kwh_and_co2e() -> None:
    used = JobEnergy(gpu_j=7.2e6, cpu_j=3.6e6, gpu_s=7200.0, methods={"gpu0": "counter", "cpu": "rapl"})
    data = totals(used, grid_g_per_kwh=400.0, pue=1.5)
    assert (data["gpu_kwh"], data["cpu_kwh"], data["total_kwh"], data["gpu_hours"]) == (2.0, 1.0, 3.0, 2.0)
    assert data["co2e_kg"] == 1.8 and data["methods"] == {"cpu": "rapl", "gpu0": "counter"}


def _zone(root: Path, name: str, label: str, energy_uj: int, range_uj: int) -> Path:
    zone = root / "sys/class/powercap" / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return zone


def test_rapl_sums_packages_only_and_handles_wrap(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", 5_000_000, 262_143_328_850)
    _zone(tmp_path, "intel-rapl:1", "package-1", 7_000_000, 262_143_328_850)
    _zone(tmp_path, "intel-rapl:0:0", "dram", 1_000_000, 262_143_328_850)
    mmio = _zone(tmp_path, "intel-rapl-mmio:0", "package-0", 9_000_000, 262_143_328_850)
    reading = read_rapl(tmp_path)
    assert reading.packages_j == {"intel-rapl:0": 5.0, "intel-rapl:1": 7.0} and not reading.problem
    assert mmio.exists()  # the MMIO interface repeats package-0: not counted twice
    assert counter_delta(262_143.0, 1.0, 262_143.32885) == pytest.approx(1.32885)
    assert read_rapl(tmp_path / "nowhere").problem.startswith("no /sys/class/powercap")


def test_rapl_damaged_zone_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    zone = _zone(tmp_path, "intel-rapl:0", "package-0", 5, 10)
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()
    assert "intel-rapl:0" in read_rapl(tmp_path).problem


def test_amd_sysfs_sampler(tmp_path: Path) -> None:
    device = tmp_path / "sys/class/drm/card0/device"
    hwmon = device / "hwmon/hwmon3"
    hwmon.mkdir(parents=True)
    for name, value in (("gpu_busy_percent", "87"), ("mem_info_vram_used", str(12 * 2**30)),
                        ("mem_info_vram_total", str(64 * 2**30))):  # fmt: skip
        (device / name).write_text(value + "\n")
    for name, value in (("power1_average", "412000000"), ("power1_cap", "560000000"), ("temp1_input", "61000")):
        (hwmon / name).write_text(value + "\n")
    (tmp_path / "sys/class/drm/card0-DP-1").mkdir()
    gpu = Gpu(Vendor.AMD, 0, "AMD Instinct MI250X", uuid="GPU-7a")
    (sample,) = AmdSysfsSampler([gpu], tmp_path).sample(5.0, {})
    assert (sample.util_pct, sample.memory_used_bytes, sample.power_w, sample.power_limit_w) == (
        87.0, 12 * 2**30, 412.0, 560.0
    )  # fmt: skip
    assert sample.temperature_c == 61.0 and sample.uuid == "GPU-7a"


def test_simulated_gpu_follows_its_holders_cpu_and_integrates_exactly() -> None:
    gpus = [Gpu(Vendor.NVIDIA, 0, "NVIDIA L4", uuid="GPU-a", memory_total_bytes=24 * 2**30, power_limit_w=72.0)]
    sampler = SimulatedSampler(gpus)
    meter = EnergyMeter()
    meter.step(sampler.sample(0.0, {0: 1.0}), simulated=True)
    (busy,) = sampler.sample(2.0, {0: 1.0})
    assert busy.util_pct == 100.0 and busy.power_w == 72.0
    assert meter.step([busy], simulated=True) == {0: (144.0, "simulated")}
    (idle,) = sampler.sample(3.0, {})
    assert idle.util_pct == 0.0 and idle.power_w == pytest.approx(10.8)


def test_proc_stat_and_io() -> None:
    stat = "4101 (python train.py) R 1 4101 4101 0 -1 0 0 0 0 0 250 50 100 0 20 0 9 0 1 1000 2048 0"
    pgrp, cpu, rss = parse_stat(stat)
    assert pgrp == 4101 and cpu == pytest.approx(400 / os.sysconf("SC_CLK_TCK"))
    assert rss == 2048 * os.sysconf("SC_PAGE_SIZE")
    assert parse_io("rchar: 1\nread_bytes: 4096\nwrite_bytes: 8192\n") == (4096, 8192)


def test_idle_and_hung_watches() -> None:
    config = DetectionConfig(idle_after_s=10, hung_after_s=20)
    watch = Watch(since=0.0, holds_gpus=True)
    assert watch.update(5, cpu_s=1.0, log_bytes=0, gpu_util=[0.0], gpu_power_fraction=[0.2], config=config) == set()
    assert watch.update(11, 1.0, 0, [0.0], [0.2], config) == {"idle"}
    assert watch.update(21, 1.0, 0, [0.0], [0.2], config) == {"idle", "hung"}
    assert watch.update(22, 1.0, 10, [0.0], [0.2], config) == {"idle"}  # the log grew: progress
    assert watch.update(23, 1.0, 10, [50.0], [0.6], config) == set()
    spinning = Watch(since=0.0, holds_gpus=True)
    for now in range(0, 25, 5):
        flags = spinning.update(now, cpu_s=float(now), log_bytes=now, gpu_util=[100.0], gpu_power_fraction=[0.12],
                                config=config)  # fmt: skip
    assert flags == {"hung"}  # busy-looking, CPU moving, but the GPU draws idle power: a stuck collective
    cpu_only = Watch(since=0.0, holds_gpus=False)
    assert cpu_only.update(100, 0.0, 0, [], [], config) == {"hung"}  # never idle: it holds no GPU


def test_prometheus_exposition() -> None:
    sample = GpuSample(0, "GPU-a", 1.0, util_pct=97.0, memory_used_bytes=2**31, power_w=300.5, energy_j=12.5)
    view = MetricsView(
        hostname="box",
        samples=[sample],
        models={0: 'A100 "SXM"'},
        running=[JobRow(7, "ada", "train", (0,), frozenset({"idle"}))],
        usage={7: JobUsage(7, 1.0, cpu_s=12.5, memory_bytes=1024)},
        energy={7: {"gpu_j": 10.0, "cpu_j": 2.0, "gpu_s": 30.0}},
        users={7: "ada"},
        queue={"running": 1, "pending": 2},
    )
    text = render(view)
    assert 'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",modelName="A100 \\"SXM\\"",Hostname="box"} 97\n' in text
    assert 'DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",modelName="A100 \\"SXM\\"",Hostname="box"} 2048\n' in text
    assert "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{" in text and "} 12500\n" in text
    assert 'tuxai_gpu_holder{gpu="0",job_id="7",user="ada",name="train"} 1' in text
    assert 'tuxai_job_idle{job_id="7",user="ada",name="train"} 1' in text
    assert 'tuxai_job_hung{job_id="7",user="ada",name="train"} 0' in text
    assert 'tuxai_job_gpu_energy_joules_total{job_id="7",user="ada"} 10' in text
    assert 'tuxai_queue_jobs{state="pending"} 2' in text
    assert "# TYPE DCGM_FI_DEV_SM_CLOCK" not in text  # no value, no family
    for line in text.splitlines():
        assert line.startswith("#") or line.rsplit(" ", 1)[1].replace(".", "").replace("e", "").isdigit()


def test_cgroup_usage_v1_and_v2(tmp_path: Path) -> None:
    from tuxai.model.cgroup import CgroupPlan
    from tuxai.telemetry.procfs import cgroup_usage

    memory, cpu, unified = tmp_path / "memory/job-1-1", tmp_path / "cpu/job-1-1", tmp_path / "unified/job-2-1"
    for directory in (memory, cpu, unified):
        directory.mkdir(parents=True)
    (memory / "memory.usage_in_bytes").write_text("104857600\n")
    v1 = CgroupPlan(1, {"memory": str(memory), "cpu": str(cpu)})
    assert cgroup_usage(v1) == (None, 104857600)  # no cpuacct here: CPU comes from the process group
    (cpu / "cpuacct.usage").write_text("2500000000\n")  # cpu,cpuacct mounted together
    assert cgroup_usage(v1) == (2.5, 104857600)
    (unified / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    (unified / "memory.current").write_text("4096\n")
    assert cgroup_usage(CgroupPlan(2, {"unified": str(unified)})) == (1.5, 4096)
    assert cgroup_usage(CgroupPlan(2, {"unified": str(tmp_path / "gone")})) == (None, None)
