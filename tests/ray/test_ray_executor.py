"""The Ray executor on the real cluster: a gang as a placement group with one launcher actor per node,
each running tuxai's shim there (issue 15, piece 1)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tests.ray.cluster import LocalRayCluster
from tuxai.cluster.ray_nodes import ClusterView
from tuxai.executor.attempt import AttemptHandle, Observed, Seen
from tuxai.executor.ray import RankLaunch, RayExecutor, placed_group
from tuxai.executor.rundir import Launch
from tuxai.model.gang import Launcher
from tuxai.model.job import StopReason
from tuxai.model.launch import gang_of, node_launch

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

WORKERS = ("127.0.0.3", "127.0.0.4")
# Each rank says who it is, then does what its node's argument asks: "ok", "fail", or "sleep".
RANK = (
    "import os, sys, time\n"
    "print('rank', os.environ['NODE_RANK'], 'of', os.environ['NNODES'], 'master', os.environ['MASTER_ADDR'],"
    " 'gpus', os.environ.get('CUDA_VISIBLE_DEVICES', ''), 'pid', os.getpid(), flush=True)\n"
    "what = sys.argv[1 + int(os.environ['NODE_RANK'])]\n"
    "if what == 'fail': sys.exit(1)\n"
    "if what == 'sleep': time.sleep(120)\n"
)


@pytest.fixture(scope="module")
def executor(ray_cluster: LocalRayCluster, tmp_path_factory: pytest.TempPathFactory) -> RayExecutor:
    """One executor on the session's cluster; its nodes keep run directories under a temp dir; an ended
    gang's group removed at once (``linger_s=0``: the kept groups have their own test)."""
    root = tmp_path_factory.mktemp("ray-nodes")
    return RayExecutor(ClusterView(ray_cluster.address).connect, str(root), place_timeout_s=5.0, linger_s=0)


def _gpus(cluster: LocalRayCluster) -> dict[str, tuple[str, ...]]:
    nodes = {n.name: n for n in ClusterView(cluster.address).refresh()}
    return {address: tuple(g.uuid for g in nodes[address].inventory.gpus) for address in WORKERS}


def _ranks(job_dir: Path, gpus: dict[str, tuple[str, ...]], *what: str, job: int = 1) -> list[RankLaunch]:
    """A gang of one rank per worker, launcher none, each told what to do."""
    job_dir.mkdir(parents=True, exist_ok=True)
    gang = gang_of(len(what), 2, Launcher.NONE)
    hosts = list(WORKERS[: len(what)])
    ranks, me = [], (os.getuid(), os.getgid(), ())  # a rank names its user: the launcher refuses one without (S1)
    for number, host in enumerate(hosts):
        command = (sys.executable, "-c", RANK, *what)
        node = node_launch(gang, command, hosts, 29400 + job, number, (job, 1))
        env = {**node.env, "CUDA_VISIBLE_DEVICES": ",".join(gpus[host]), "PATH": os.environ["PATH"]}
        log = str(job_dir / f"rank-{number}.log")
        launch = Launch(job, 1, node.command, env, str(job_dir), log, job_dir=str(job_dir), grace_s=2.0, user=me)
        ranks.append(RankLaunch(launch, host, gpus[host]))
    return ranks


def _started(executor: RayExecutor, cluster: LocalRayCluster, job_dir: Path, *what: str, job: int) -> AttemptHandle:
    """A gang of ``what`` (one rank per worker) prepared and started."""
    handle = executor.prepare_gang(_ranks(job_dir, _gpus(cluster), *what, job=job))
    executor.start(handle)
    return handle


def _until_exited(executor: RayExecutor, handle: AttemptHandle, timeout_s: float) -> tuple[Observed, float]:
    began = time.monotonic()
    while (seen := executor.observe(handle)).seen is not Seen.EXITED:
        assert time.monotonic() - began < timeout_s, f"still {seen} after {timeout_s} s"
        time.sleep(0.2)
    return seen, time.monotonic() - began


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _group_state(executor: RayExecutor, handle: AttemptHandle) -> str:
    from ray.util import placement_group_table

    ray = executor.connect()
    try:
        group = ray.util.get_placement_group(placed_group(handle))
    except ValueError:
        return "REMOVED"
    return str(placement_group_table(group)["state"])


def test_a_gang_runs_one_shim_per_chosen_node_with_the_launch_contract(
    executor: RayExecutor, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    gpus = _gpus(ray_cluster)
    handle = executor.prepare_gang(_ranks(tmp_path / "job", gpus, "ok", "ok", job=11))
    executor.start(handle)
    assert executor.nodes(handle) == WORKERS  # each rank on the node the scheduler chose
    seen, _ = _until_exited(executor, handle, 60)
    assert seen.status is not None and seen.status.exit_code == 0 and not seen.status.error
    for number, host in enumerate(WORKERS):
        line = (tmp_path / "job" / f"rank-{number}.log").read_text().split("pid")[0].strip()
        assert line == f"rank {number} of 2 master 127.0.0.3 gpus {','.join(gpus[host])}"
    assert _group_state(executor, handle) == "REMOVED"  # the GPUs go back to Ray once the gang is over


def test_E15_first_failing_rank_tears_the_gang_down(
    executor: RayExecutor, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    handle = _started(executor, ray_cluster, tmp_path / "job", "sleep", "fail", job=12)
    log = tmp_path / "job" / "rank-0.log"
    began = time.monotonic()
    while "pid" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() - began < 30
        time.sleep(0.1)
    sleeper = int(log.read_text().split("pid")[1].split()[0])
    seen, took = _until_exited(executor, handle, 10)
    assert seen.status is not None and seen.status.exit_code == 1 and seen.status.stop_reason is None
    assert not _alive(sleeper)  # rank 0 stopped with the gang
    assert _group_state(executor, handle) == "REMOVED"
    print(f"gang torn down {took:.1f} s after the start")


def test_E15_an_unplaceable_group_is_removed_with_words_never_left_pending(
    executor: RayExecutor, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    gpus = _gpus(ray_cluster)
    ranks = _ranks(tmp_path / "job", gpus, "ok", "ok", job=13)
    both_on_one = [ranks[0], RankLaunch(ranks[1].launch, WORKERS[0], gpus[WORKERS[0]])]  # STRICT_SPREAD, one node
    handle = executor.prepare_gang(both_on_one)
    began = time.monotonic()
    executor.start(handle)
    seen = executor.observe(handle)
    assert seen.seen is Seen.EXITED and seen.status is not None
    assert seen.status.error.startswith("Ray could not place 2 node(s) STRICT_SPREAD within 5 s: {GPU: 2")
    assert "node:127.0.0.3" in seen.status.error
    assert _group_state(executor, handle) == "REMOVED"
    assert time.monotonic() - began < 15


def test_a_stop_and_a_restarted_daemon_find_the_gang_from_its_handle(
    executor: RayExecutor, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    handle = _started(executor, ray_cluster, tmp_path / "job", "sleep", "sleep", job=14)
    again = RayExecutor(executor.connect, executor.node_root, linger_s=0)  # a new daemon knows the handle only
    assert again.observe(handle).seen is Seen.ALIVE
    again.stop(handle, StopReason.CANCEL)
    seen, took = _until_exited(again, handle, 15)
    assert seen.status is not None and seen.status.stop_reason is StopReason.CANCEL
    assert _group_state(again, handle) == "REMOVED"
    print(f"gang stopped in {took:.1f} s")


def test_a_stop_before_the_start_wins(executor: RayExecutor, ray_cluster: LocalRayCluster, tmp_path: Path) -> None:
    gpus = _gpus(ray_cluster)
    handle = executor.prepare_gang(_ranks(tmp_path / "job", gpus, "ok", job=15))
    assert executor.observe(handle).seen is Seen.NOT_STARTED
    executor.stop(handle, StopReason.CANCEL)
    executor.start(handle)
    seen = executor.observe(handle)
    assert seen.seen is Seen.EXITED and seen.status is not None and seen.status.stop_reason is StopReason.CANCEL
    assert not (tmp_path / "job" / "rank-0.log").exists()  # nothing ran
    assert executor.abandon(handle) is False  # start claimed it


def test_E15_a_worker_stopped_mid_run_ends_the_gang_with_the_nodes_loss_and_the_view_follows_it(
    executor: RayExecutor, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    """One stop and restart of a worker for two checks (the tier's time): the gang's end, and ClusterView
    noticing the node leave and join again (a new node id, probed again: the same GPUs)."""
    view = ClusterView(ray_cluster.address)
    before = {n.name: n for n in view.refresh()}
    first_id = {n.address: n.node_id for n in view.ray_nodes}[WORKERS[1]]
    handle = _started(executor, ray_cluster, tmp_path / "job", "sleep", "sleep", job=16)
    logs = [tmp_path / "job" / f"rank-{number}.log" for number in (0, 1)]
    began = time.monotonic()
    while not all(log.exists() and "pid" in log.read_text() for log in logs):
        assert time.monotonic() - began < 30
        time.sleep(0.1)
    pids = [int(log.read_text().split("pid")[1].split()[0]) for log in logs]
    worker = next(n for n in ray_cluster.nodes if n.ip == WORKERS[1])
    worker.stop()  # its raylet and actor go; the rank's detached shim stays (a real node's would go with it)
    try:
        assert worker.processes() == []
        seen, took = _until_exited(executor, handle, 60)
        assert seen.status is not None
        assert seen.status.error == "node 127.0.0.4 (rank 1) was lost while the gang ran: the gang was stopped"
        assert not _alive(pids[0])  # the surviving node's rank was stopped with the gang
        print(f"node loss seen and the gang ended {took:.1f} s after the stop")
        left_s = _until(view, ["127.0.0.2", WORKERS[0]])
        assert [n.alive for n in view.ray_nodes if n.node_id == first_id] == [False]  # listed as dead
    finally:
        os.kill(pids[1], 9)  # what a real lost node takes with it
        worker.start(ray_cluster.address, ray_cluster.gcs_port)
    joined_s = _until(view, ["127.0.0.2", *WORKERS])
    again = {n.name: n for n in view.refresh()}
    second_id = {n.address: n.node_id for n in view.ray_nodes if n.alive}[WORKERS[1]]
    assert second_id != first_id  # a new node, probed again: the same GPUs
    assert [g.uuid for g in again[WORKERS[1]].inventory.gpus] == [g.uuid for g in before[WORKERS[1]].inventory.gpus]
    print(f"node gone from the view in {left_s:.1f} s, back in {joined_s:.1f} s")


def _until(view: ClusterView, names: list[str], timeout_s: float = 60.0) -> float:
    began = time.monotonic()
    while sorted(n.name for n in view.refresh()) != names:
        assert time.monotonic() - began < timeout_s, f"still {[n.name for n in view.refresh()]}, waiting for {names}"
        time.sleep(0.5)
    return time.monotonic() - began


def test_E15_the_next_job_on_the_same_gpus_takes_the_ended_gangs_group_at_once(
    executor: RayExecutor, ray_cluster: LocalRayCluster, tmp_path: Path
) -> None:
    """Ray gives a removed group's GPUs back ~1 s later: a queue's next job on the same GPU waited that long
    to be placed. A group kept ``linger_s`` after its gang ended is taken as it is by the next job asking
    for exactly its GPUs; one asking for more of them has the kept group removed first, not waited on."""
    gpus = _gpus(ray_cluster)
    kept = RayExecutor(executor.connect, executor.node_root, place_timeout_s=5.0, linger_s=60)
    one = {WORKERS[0]: gpus[WORKERS[0]][:1]}

    def run(job: int, on: dict[str, tuple[str, ...]]) -> tuple[AttemptHandle, float]:
        handle = kept.prepare_gang(_ranks(tmp_path / f"job{job}", on, "ok", job=job))
        began = time.monotonic()
        kept.start(handle)
        took = time.monotonic() - began
        seen, _ = _until_exited(kept, handle, 30)
        assert seen.status is not None and seen.status.exit_code == 0 and not seen.status.error, seen
        return handle, took

    try:
        first, first_s = run(21, one)
        assert placed_group(first).startswith("tuxai-gpus-") and _group_state(kept, first) == "CREATED"  # kept
        second, second_s = run(22, one)
        assert placed_group(second) == placed_group(first)  # the same group: nothing placed again
        both, both_s = run(23, {WORKERS[0]: gpus[WORKERS[0]]})  # overlaps the kept group: it goes first
        assert placed_group(both) != placed_group(first) and _group_state(kept, first) == "REMOVED"
        assert both_s < 5.0  # placed, not timed out behind the kept group
        print(f"start: a new group {first_s * 1000:.0f} ms, the kept one {second_s * 1000:.0f} ms, "
              f"after removing an overlapping one {both_s * 1000:.0f} ms")  # fmt: skip
    finally:
        kept.close()  # the idle groups go: Ray's GPUs back to Ray's other users
    assert _group_state(kept, both) == "REMOVED"
