"""A rank's cgroup planned on its cluster node (executor.node_cgroups, issue 15): the local plan's rules
from the node's own cgroups; a node that cannot make groups says so in the rank's log."""

from __future__ import annotations

import time
from pathlib import Path

from tuxai.executor.attempt import Seen
from tuxai.executor.local import LocalExecutor
from tuxai.executor.node_cgroups import rank_cgroup
from tuxai.executor.rundir import Launch
from tuxai.hardware.cgroups import CgroupSupport

V1 = CgroupSupport(1, {c: f"/sys/fs/cgroup/{c}/tuxai" for c in ("memory", "cpu", "pids", "devices")})
V2_SYSTEMD = CgroupSupport(2, {"unified": "/sys/fs/cgroup/tuxai.slice"}, path="systemd", systemd_version=252)


def _launch(memory: int = 0, cpus: int = 0) -> Launch:
    return Launch(3, 1, ("true",), {}, "/", "/l", memory_limit_bytes=memory, cpu_quota=cpus, pids_max=100)


def test_E15_a_limited_rank_gets_memory_and_cpu_groups_under_the_nodes_tuxai_parent() -> None:
    planned = rank_cgroup(V1, _launch(2**26, 1), "tuxai-ab-r1", 0, "10.0.0.3")
    assert planned.cgroup.version == 1 and not planned.note
    assert dict(planned.cgroup.dirs) == {c: f"/sys/fs/cgroup/{c}/tuxai/tuxai-ab-r1" for c in ("memory", "cpu", "pids")}
    assert planned.cpu_quota == 1 and planned.memory_limit_bytes == 2**26


def test_E15_a_rank_without_limits_gets_the_pids_group_only() -> None:
    assert dict(rank_cgroup(V1, _launch(), "r0", 0, "10.0.0.3").cgroup.dirs) == {"pids": "/sys/fs/cgroup/pids/tuxai/r0"}


def test_E15_a_systemd_node_runs_the_rank_in_a_scope_with_its_limits() -> None:
    planned = rank_cgroup(V2_SYSTEMD, _launch(2**30, 2), "r0", 0, "10.0.0.3")
    assert planned.cgroup.systemd is not None
    assert {"MemoryMax=1073741824", "CPUQuota=200%", "TasksMax=100"} <= set(planned.cgroup.systemd.properties)


def test_E15_a_node_whose_worker_is_not_root_runs_the_rank_without_and_says_so() -> None:
    planned = rank_cgroup(V1, _launch(2**26, 1), "r0", 1000, "10.0.0.4")
    assert not planned.cgroup and planned.cpu_quota == 0
    assert planned.note == (
        "tuxai: node 10.0.0.4 runs this rank without a cgroup (its worker runs as uid 1000, not root): "
        "its memory limit of 64.0 MiB and CPU quota of 1 are not enforced"
    )
    assert rank_cgroup(V1, _launch(), "r0", 1000, "10.0.0.4") == _launch()  # nothing to enforce: no word


def test_E15_a_node_with_no_cgroups_names_its_problem() -> None:
    planned = rank_cgroup(CgroupSupport(0, problem="no cgroup file system is mounted"), _launch(2**26), "r0", 0, "n")
    assert "(no cgroup file system is mounted)" in planned.note and not planned.cgroup


def test_E15_the_shim_writes_a_nodes_note_first_in_the_rank_log(tmp_path: Path) -> None:
    """A real shim (the local executor's, as a node's launcher runs it): the note, then the job's output."""
    job_dir = tmp_path / "jobs" / "3"
    job_dir.mkdir(parents=True)
    note = "tuxai: node 10.0.0.4 runs this rank without a cgroup (its worker runs as uid 1000, not root): …"
    launch = Launch(3, 1, ("echo", "rank output"), {"PATH": "/usr/bin:/bin"}, "", str(job_dir / "output.log"),
                    job_dir=str(job_dir), note=note)  # fmt: skip
    executor = LocalExecutor(tmp_path)
    try:
        handle = executor.prepare(launch)
        executor.start(handle)
        began = time.monotonic()
        while executor.observe(handle).seen is not Seen.EXITED:
            assert time.monotonic() - began < 10
            time.sleep(0.02)
    finally:
        executor.close()
    assert (job_dir / "output.log").read_text() == f"{note}\nrank output\n"
