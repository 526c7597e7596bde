"""The systemd path of a job's limits: the plan, the properties, the command line, the device policy.

What systemd itself does with them is tested in the VM tier (tests/vm: Debian 12, systemd on
cgroup v2); here, that tuxai asks for exactly what it means to.
"""

from __future__ import annotations

from pathlib import Path

from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.launch import build_launch, cgroup_name
from tuxai.executor import systemd
from tuxai.hardware.cgroups import CgroupSupport, parse_systemd_version, systemd_problem
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobRecord, JobSpec, JobState
from tuxai.model.resources import Allocation, GpuShare, Request

REPO = Path(__file__).parent.parent.parent
PROC_DEVICES = """Character devices:
  1 mem
  4 tty
195 nvidia-frontend
507 nvidia-uvm
510 nvidia-caps

Block devices:
  8 sd
259 blkext
"""


def test_device_policy_allows_every_driver_but_the_other_gpus() -> None:
    props = systemd.device_properties((1,), PROC_DEVICES, exists=lambda path: path == "/dev/nvidiactl")
    assert props[0] == "DevicePolicy=closed"
    allowed = [p.removeprefix("DeviceAllow=") for p in props[1:]]
    assert "char-nvidia-frontend rwm" not in allowed  # major 195: only the job's own minor
    assert {"char-mem rwm", "char-nvidia-uvm rwm", "block-sd rwm", "/dev/nvidia1 rw", "/dev/nvidiactl rw"} <= set(
        allowed
    )
    assert "/dev/nvidia0 rw" not in allowed and "/dev/nvidia-modeset rw" not in allowed  # not there: not named


def test_properties_carry_each_limit_and_only_those_asked() -> None:
    assert systemd.properties(0, 0, (), 0, ()) == []
    assert systemd.properties(512 * 2**20, 4, (2, 3), 64, ["DevicePolicy=closed"]) == [
        "MemoryMax=536870912",
        "MemorySwapMax=0",
        "CPUQuota=400%",
        "AllowedCPUs=2,3",
        "TasksMax=64",
        "DevicePolicy=closed",
    ]


def test_the_command_line_switches_user_and_directory_after_the_scope() -> None:
    plan = systemd.plan("/sys/fs/cgroup/tuxai.slice", "tuxai-ab-job-7-2", ["TasksMax=9"], 255)
    assert plan.dirs == {"unified": "/sys/fs/cgroup/tuxai.slice/tuxai-ab_job_7_2.slice"}
    argv = systemd.run_argv(plan, (1000, 100), "/home/ada/run")
    assert argv[:6] == [
        "systemd-run",
        "--scope",
        "--quiet",
        "--collect",
        "--slice=tuxai-ab_job_7_2.slice",
        "--unit=tuxai-ab-job-7-2.scope",
    ]
    # systemd ≥ 254 would expand $VARS in the job's own command line: asked not to.
    assert "--expand-environment=no" in argv
    assert argv[-7:] == ["--uid=1000", "--gid=100", "--", "env", "-C", "/home/ada/run", "--"]
    old = systemd.run_argv(systemd.plan("/x", "tuxai-ab-job-7-2", [], 252), None, "")
    assert "--expand-environment=no" not in old and old[-1] == "--" and "--uid=1000" not in old


def test_a_systemd_host_gets_a_scope_per_job_with_its_limits(tmp_path: Path) -> None:
    inventory = load_inventory_file(REPO / "examples" / "inventories" / "two-gpu-box.yaml")
    support = CgroupSupport(
        2, {"unified": "/sys/fs/cgroup/tuxai.slice"}, device_rules=True, path="systemd", systemd_version=252
    )
    config = DaemonConfig(tmp_path, inventory, cgroups=support, online_cpus=(0, 1, 2, 3), job_pids_max=128)
    spec = JobSpec(command=("python", "train.py"), request=Request(gpus=1, cpus=2, memory_bytes=2**30))
    job = JobRecord(id=5, spec=spec, user="ada", uid=1000, gid=100, state=JobState.PENDING, submitted_at=0.0)
    allocation = Allocation("local", (GpuShare(0, inventory.gpus[0].uuid),), cpus=(0, 1))
    launch = build_launch(config, job, allocation, 1, str(tmp_path / "jobs" / "5" / "output.log"), {})
    unit = launch.cgroup.systemd
    assert unit is not None and unit.scope == cgroup_name(tmp_path, 5, 1) + ".scope"
    assert {"MemoryMax=1073741824", "CPUQuota=200%", "AllowedCPUs=0,1", "TasksMax=128"} <= set(unit.properties)
    assert launch.devices == ()  # no v1 rules on this path
    # A simulated box has no /dev/nvidiaN: no device policy (CUDA_VISIBLE_DEVICES holds the job).
    assert not any(p.startswith("Device") for p in unit.properties)


def test_systemd_is_the_path_only_where_it_can_be() -> None:
    assert parse_systemd_version("systemd 252 (252.22-1~deb12u1)\n") == 252
    assert parse_systemd_version("something else") == 0
    # This machine: no systemd as PID 1 (the VM tier is where the path is taken).
    problem = systemd_problem(euid=0)
    assert problem == "" or problem in ("systemd is not PID 1", "systemd-run is not on PATH")
    if not problem:
        assert systemd_problem(euid=1000).startswith("the daemon is not root")
