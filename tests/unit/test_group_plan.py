"""One cgroup planner (executor.group_plan, issue 15 review item 9): a local job (``daemon.launch``) and a
rank on a cluster node (``daemon.cluster`` then ``executor.node_cgroups``) on the same kind of host get
the same groups and limits, whichever host and limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.daemon.cluster import rank_launches
from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.launch import build_launch, cgroup_name
from tuxai.executor.group_plan import plan_groups
from tuxai.executor.node_cgroups import rank_cgroup
from tuxai.hardware.cgroups import CgroupSupport
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobRecord, JobSpec, JobState
from tuxai.model.resources import Allocation, GpuShare, Request
from tuxai.scheduler.snapshot import Node

REPO = Path(__file__).parent.parent.parent
HOSTS = {
    "v1": CgroupSupport(1, {c: f"/cg/{c}/tuxai" for c in ("memory", "cpu", "pids", "devices")}, device_rules=True),
    "v2": CgroupSupport(2, {"unified": "/sys/fs/cgroup/tuxai"}),
    "systemd": CgroupSupport(2, {"unified": "/sys/fs/cgroup/tuxai.slice"}, path="systemd", systemd_version=252),
}


@pytest.mark.parametrize("host", sorted(HOSTS))
@pytest.mark.parametrize(("memory", "every_job"), [(0, False), (2**30, False), (0, True)])
def test_E15_R9_a_rank_on_its_node_and_a_local_job_get_one_plan(
    tmp_path: Path, host: str, memory: int, every_job: bool
) -> None:
    inventory = load_inventory_file(REPO / "examples" / "inventories" / "two-gpu-box.yaml")
    config = DaemonConfig(tmp_path, inventory, cgroups=HOSTS[host], job_pids_max=128, cgroup_every_job=every_job)
    spec = JobSpec(command=("python", "t.py"), request=Request(gpus=1, cpus=2, memory_bytes=memory))
    job = JobRecord(id=5, spec=spec, user="ada", uid=1000, gid=100, state=JobState.PENDING, submitted_at=0.0)
    allocation = Allocation("n1", (GpuShare(0, inventory.gpus[0].uuid),), cpus=(0, 1))
    log = str(tmp_path / "jobs" / "5" / "output.log")
    local = build_launch(config, job, allocation, 1, log, {})
    (rank,) = rank_launches(config, job, allocation, {"n1": Node("n1", inventory)}, 1, log, {})
    assert not rank.launch.cgroup  # the daemon cannot see the node's cgroups: the node plans
    planned = rank_cgroup(HOSTS[host], rank.launch, cgroup_name(tmp_path, 5, 1), 0, "n1")
    assert planned.cgroup == local.cgroup and planned.cpu_quota == local.cpu_quota
    assert ("memory" in local.cgroup.dirs) == (host == "v1" and bool(memory or every_job))


def test_E15_R9_the_one_planner_fences_devices_in_v1_rules_or_systemd_properties() -> None:
    limits = (2**30, 2, (0, 1), 128)
    v1, v1_rules = plan_groups(HOSTS["v1"], "j", True, limits, (3,))
    assert sorted(v1.dirs) == ["cpu", "devices", "memory", "pids"] and "c 195:3 rwm" in v1_rules
    unit, rules = plan_groups(HOSTS["systemd"], "j", False, limits, (3,), lambda: "Character devices:\n195 nvidia\n")
    assert rules == () and unit.systemd is not None and "DevicePolicy=closed" in unit.systemd.properties
    assert "CPUQuota=200%" not in unit.systemd.properties  # not enforced: no quota, whatever was asked
