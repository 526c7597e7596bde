"""The daemon on the Ray cluster (issue 15, pieces 2-5): its queue, store and policy; the cluster's nodes;
decisions run by the Ray executor. Driven by ``Daemon.tick(now)`` in this process (the `tuxai up --ray`
process wiring is not built yet); the job is examples/jobs/ddp.py unchanged, 2 nodes × 2 ranks (gloo)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.ray.cluster import LocalRayCluster
from tuxai.cluster.ray_nodes import ClusterView
from tuxai.daemon.cluster import RayNodes
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.daemon.ray_engine import node_cgroups, node_sampler, ray_daemon
from tuxai.errors import UsageError
from tuxai.executor.attempt import AttemptHandle
from tuxai.executor.ray import RayExecutor, placed_group
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict
from tuxai.store.jobs import Store

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

JOBS = REPO / "examples" / "jobs"
ROOT = Caller("root", 0, 0, admin=True)
RANK_LINE = re.compile(r"^rank (\d)/(\d) RANK=(\d) WORLD_SIZE=(\d) NODE_RANK=(\d) LOCAL_RANK=(\d) "
                       r"CUDA_VISIBLE_DEVICES=(\S*) pid=(\d+)$", re.M)  # fmt: skip
CHECKSUM = re.compile(r"^rank (\d) step 0 loss \S+ grad checksum (\S+)$", re.M)
ENDED = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
# Each node's rank says where it is, then waits, or exits 1 on the node whose rank is its argument.
RANK = (
    "import os, sys, time\n"
    "print('node', os.environ['NODE_RANK'], 'master', os.environ['MASTER_ADDR'], 'pid', os.getpid(), flush=True)\n"
    "if os.environ['NODE_RANK'] == sys.argv[1]: time.sleep(1); sys.exit(1)\n"
    "time.sleep(120)\n"
)
GANG = {"nodes": 2, "gpus_per_node": 1, "launcher": "none"}
# Node 1's rank touches 256 MiB page by page; node 0's waits.
HOG = (
    "import os, time\n"
    "print('node', os.environ['NODE_RANK'], 'master', os.environ['MASTER_ADDR'], 'pid', os.getpid(), flush=True)\n"
    "if os.environ['NODE_RANK'] == '1':\n"
    "    hog = bytearray(256 * 2**20)\n"
    "    for i in range(0, len(hog), 4096): hog[i] = 1\n"
    "time.sleep(120)\n"
)


@pytest.fixture(scope="module")
def daemon(ray_cluster: LocalRayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon whose nodes are the cluster's and whose executor is Ray's (one per module)."""
    home = tmp_path_factory.mktemp("home")
    view = ClusterView(ray_cluster.address)
    config = DaemonConfig(home, load_inventory_file(ray_cluster.nodes[0].inventory))
    executor = RayExecutor(  # as tuxai up --ray (daemon.ray_engine)
        view.connect, str(home / "nodes"), node_cgroups=node_cgroups, node_sampler=node_sampler
    )
    store = Store(home / "tuxai.db")
    nodes = RayNodes(view, refresh_s=1.0)
    nodes.nodes()  # read at the daemon's start: each node probed once, on itself
    yield Daemon(config, store, executor, nodes)
    executor.close()  # the groups kept for reuse: Ray's GPUs back for the next module
    store.close()


def _submit(daemon: Daemon, *args: str, **fields: object) -> int:
    """``python ddp.py ARGS`` (or ``python -c SCRIPT`` when ``script`` is given) from examples/jobs."""
    script = fields.pop("script", None)
    command = ["python", "-c", str(script), *args] if script else ["python", "ddp.py", *args]
    spec = spec_from_dict({"command": command, "workdir": str(JOBS), **fields}, origin="test")
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"  # this venv's python and torchrun first
    return daemon.submit(spec, ROOT, {"PATH": path}, time.time())


def _until_ended(daemon: Daemon, job_id: int, timeout_s: float) -> float:
    began = time.monotonic()
    while daemon.store.get(job_id).state not in ENDED:
        assert time.monotonic() - began < timeout_s, daemon.store.get(job_id)
        daemon.tick(time.time())
        time.sleep(0.2)
    return time.monotonic() - began


def _logs(daemon: Daemon, job_id: int) -> str:
    job_dir = Path(daemon.store.get(job_id).log_path).parent
    return "".join(p.read_text() for p in sorted(job_dir.glob("output*.log")))


def test_E15_ddp_trains_on_two_workers_and_the_ranks_agree(daemon: Daemon) -> None:
    gang = {"nodes": 2, "gpus_per_node": 2, "launcher": "torchrun"}
    job_id = _submit(daemon, **gang)
    took = _until_ended(daemon, job_id, 240)
    job, log = daemon.store.get(job_id), _logs(daemon, job_id)
    assert job.state is JobState.SUCCEEDED, log
    ranks = sorted(RANK_LINE.findall(log))
    assert [r[:6] for r in ranks] == [
        ("0", "4", "0", "4", "0", "0"),
        ("1", "4", "1", "4", "0", "1"),
        ("2", "4", "2", "4", "1", "0"),
        ("3", "4", "3", "4", "1", "1"),
    ], log
    assert job.allocation is not None
    placed = (job.allocation, *job.allocation.more)
    assert sorted(a.node for a in placed) == ["127.0.0.3", "127.0.0.4"]
    by_node = {a.node: ",".join(g.uuid or "" for g in a.gpus) for a in placed}
    assert {r[6] for r in ranks if r[4] == "0"} == {by_node[placed[0].node]}  # each node's ranks see its GPUs
    assert {r[6] for r in ranks if r[4] == "1"} == {by_node[placed[1].node]}
    sums = dict(CHECKSUM.findall(log))
    assert set(sums) == {"0", "1", "2", "3"} and len(set(sums.values())) == 1, log
    print(f"2 nodes × 2 ranks of ddp.py trained in {took:.1f} s")


def test_E15_an_impossible_gang_is_refused_at_submit_with_the_clusters_shape(daemon: Daemon) -> None:
    began = time.monotonic()
    with pytest.raises(UsageError) as refused:
        _submit(daemon, nodes=3, gpus_per_node=2, launcher="torchrun")
    assert refused.value.message == (
        "impossible gang: asks 3 nodes × 2 GPUs; the cluster has 2 nodes with 2 GPUs each, 1 node with no GPU "
        "(2 of them can hold one node's share: 127.0.0.3, 127.0.0.4)"
    )
    assert time.monotonic() - began < 5.0


def _pids(daemon: Daemon, job_id: int, count: int) -> list[int]:
    """The pids its ranks printed, once ``count`` of them did."""
    began = time.monotonic()
    while len(found := re.findall(r"^node \d master \S+ pid (\d+)$", _logs(daemon, job_id), re.M)) < count:
        assert time.monotonic() - began < 60, _logs(daemon, job_id)
        daemon.tick(time.time())
        time.sleep(0.2)
    return [int(p) for p in found]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_E15_one_rank_exiting_1_fails_the_gang_within_10_s_and_no_rank_is_left(daemon: Daemon) -> None:
    job_id = _submit(daemon, "1", script=RANK, **GANG)
    pids = _pids(daemon, job_id, 2)
    took = _until_ended(daemon, job_id, 10)
    job = daemon.store.get(job_id)
    assert job.state is JobState.FAILED and job.exit_code == 1 and job.reason.startswith("exit code 1"), job.reason
    assert not any(_alive(pid) for pid in pids)
    print(f"gang failed {took:.1f} s after both ranks ran")


def test_E15_a_restarted_daemon_adopts_the_running_gang_and_records_its_outcome(
    daemon: Daemon, ray_cluster: LocalRayCluster
) -> None:
    job_id = _submit(daemon, "9", script=RANK, **GANG)  # no node 9: both ranks wait
    pids = _pids(daemon, job_id, 2)
    view = ClusterView(ray_cluster.address)
    executor = RayExecutor(view.connect, str(daemon.config.home / "nodes"))
    again = Daemon(daemon.config, daemon.store, executor, RayNodes(view))  # the first one knows nothing more
    again.reconcile(time.time())
    assert again.store.get(job_id).state is JobState.RUNNING
    again.cancel(job_id, ROOT, time.time())
    _until_ended(again, job_id, 15)
    assert again.store.get(job_id).state is JobState.CANCELLED
    assert not any(_alive(pid) for pid in pids)


def test_E15_tuxai_up_ray_auto_runs_a_submitted_gang_on_the_workers(
    ray_cluster: LocalRayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.daemon_helpers import DaemonProcess, finish
    from tests.e2e.test_gang_local import submit

    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)  # --ray auto: the cluster RAY_ADDRESS names
    process = DaemonProcess(tmp_path / "home", ray_cluster.nodes[0].inventory, ("--ray", "auto"))
    began = time.monotonic()
    process.start(timeout_s=90)
    up_s = time.monotonic() - began
    try:
        script = "import os; print('node', os.environ['NODE_RANK'], 'master', os.environ['MASTER_ADDR'])"
        done = submit(process.home, "--json", "--nodes", "2", "--gpus-per-node", "1", "--launcher", "none", "--",
                      "python", "-c", script)  # fmt: skip
        assert done.returncode == 0, done.stderr
        job_id = int(json.loads(done.stdout)["id"])
        job = process.wait_all([job_id], timeout_s=90)[job_id]
        logs = "".join(p.read_text() for p in sorted((process.home / "jobs" / str(job_id)).glob("output*.log")))
        assert job.state == "succeeded", logs
        master = logs.split("master ")[1].split()[0]
        assert master in ("127.0.0.3", "127.0.0.4")
        assert sorted(logs.splitlines()) == [f"node 0 master {master}", f"node 1 master {master}"]
        env = {**os.environ, "TUXAI_HOME": str(process.home)}

        def tuxai(*args: str) -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, "-m", "tuxai", *args]
            return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)

        def logs_of(*flags: str) -> subprocess.CompletedProcess[str]:
            return tuxai("logs", str(job_id), *flags)

        assert sorted(logs_of().stdout.splitlines()) == [
            f"[rank 0] node 0 master {master}",
            f"[rank 1] node 1 master {master}",
        ]
        assert logs_of("--rank", "1").stdout == f"node 1 master {master}\n"  # one node's log, byte for byte
        assert logs_of("--tail", "1", "-f").stdout == f"[rank 1] node 1 master {master}\n"  # the last line read
        show = subprocess.run([sys.executable, "-m", "tuxai", "show", str(job_id)], capture_output=True, text=True,
                              env=env, timeout=60, check=False).stdout  # fmt: skip
        other = next(w for w in ("127.0.0.3", "127.0.0.4") if w != master)
        assert re.search(rf"^ +nodes  {master}:\d {other}:\d$", show, re.M), show  # each node's GPU, rank order
        assert re.search(r"^ +rank 0  exit 0\n +rank 1  exit 0$", show, re.M), show
        wrong = logs_of("--rank", "2")
        assert wrong.returncode != 0 and wrong.stderr.count("\n") == 1
        assert f"job {job_id} runs on 2 node(s): its ranks are 0 to 1" in wrong.stderr
        spin = "import time\nend = time.time() + 60\nwhile time.time() < end: pass"
        busy = submit(process.home, "--json", "--nodes", "2", "--gpus-per-node", "1", "--launcher", "none", "--",
                      "python", "-c", spin)  # fmt: skip
        busy_id, began = int(json.loads(busy.stdout)["id"]), time.monotonic()
        while len(re.findall(r"^  └ rank \d on 127\.0\.0\.[34]  CPU ", top := tuxai("top", "--once").stdout, re.M)) < 2:
            assert time.monotonic() - began < 30, top  # each node's sample, at the daemon's next telemetry step
            time.sleep(0.5)
        assert tuxai("cancel", str(busy_id)).returncode == 0
        daemon_log = (process.home / "daemon.log").read_text()
        assert f"on the Ray cluster at {ray_cluster.address} (asked: auto), 3 node(s) read" in daemon_log
        print(f"tuxai up --ray auto answered in {up_s:.1f} s")
    finally:
        finish(process)


def test_E15_a_small_job_backfills_beside_a_waiting_gang_and_a_long_one_does_not(daemon: Daemon) -> None:
    sleep = "import sys, time; time.sleep(float(sys.argv[1]))"
    holder = _submit(daemon, "300", script=sleep, gpus=1, time="1h")  # one GPU of one worker, for an hour
    daemon.tick(time.time())
    gang = _submit(
        daemon, "300", script=sleep, nodes=2, gpus_per_node=2, launcher="none", time="1h", priority=100
    )  # first in the queue: the job that waits
    short = _submit(daemon, "1", script=sleep, gpus=1, time="1m")  # ends long before the gang's reservation
    long = _submit(daemon, "1", script=sleep, gpus=1, time="2h")  # would delay it
    daemon.tick(time.time())
    try:
        assert daemon.store.get(gang).state is JobState.PENDING
        assert daemon.store.get(gang).reason.startswith("waiting for 2 nodes with 2 free GPUs each (short now: on ")
        assert daemon.store.get(short).state is JobState.RUNNING
        assert daemon.store.get(short).reason == f"backfilled ahead of job {gang}"
        assert daemon.store.get(long).state is JobState.PENDING
        daemon.cancel(holder, ROOT, time.time())
        _until_ended(daemon, short, 60)
        began = time.monotonic()
        while daemon.store.get(gang).state is not JobState.RUNNING:  # the gang before the long job
            assert time.monotonic() - began < 30, daemon.store.get(gang)
            daemon.tick(time.time())
            time.sleep(0.2)
        assert daemon.store.get(long).state is JobState.PENDING
    finally:
        for job_id in (holder, gang, long):
            if daemon.store.get(job_id).state not in ENDED:
                daemon.cancel(job_id, ROOT, time.time())
        for job_id in (holder, gang, long):
            _until_ended(daemon, job_id, 30)


def _group(daemon: Daemon, job_id: int) -> tuple[str, str]:
    """The placement group a job's attempt holds, and its state on the cluster."""
    from ray.util import placement_group_table

    assert isinstance(daemon.executor, RayExecutor)
    name = placed_group(AttemptHandle(daemon.store.get(job_id).run_dir))
    try:
        return name, str(placement_group_table(daemon.executor.connect().util.get_placement_group(name))["state"])
    except ValueError:
        return name, "REMOVED"


def test_E15_a_daemon_started_after_a_sigkill_removes_the_groups_the_killed_one_kept(
    daemon: Daemon, ray_cluster: LocalRayCluster
) -> None:
    """The pool of kept groups lived in the killed daemon's memory only: its idle group held a GPU in Ray's
    accounting until a new group asked for it. The daemon started again (``tuxai up --ray``'s
    ``ray_daemon``; the first one is never called again, as after its SIGKILL) removes it at once and
    keeps the running job's group."""
    sleep = "import sys, time; time.sleep(float(sys.argv[1]))"
    running = _submit(daemon, "300", script=sleep, gpus=1, time="1h")
    daemon.tick(time.time())
    ended = _submit(daemon, "0", script=sleep, gpus=1, time="1m")  # another GPU: the first one's is taken
    _until_ended(daemon, ended, 30)
    kept, state = _group(daemon, ended)
    assert kept.startswith("tuxai-gpus-") and state == "CREATED"  # kept idle for the next job on its GPU
    held, _ = _group(daemon, running)
    again = ray_daemon(daemon.config, daemon.store, ray_cluster.address, daemon.config.home / "ray-nodes")
    try:
        assert _group(again, ended) == (kept, "REMOVED")
        assert _group(again, running) == (held, "CREATED")  # the adopted running job keeps its group
        job = again.store.get(running)
        assert job.state is JobState.RUNNING and job.allocation is not None
        busy = {f"tuxai_gpu_{g.uuid}" for g in job.allocation.gpus}
        ray = again.executor.connect()  # type: ignore[attr-defined]
        began = time.monotonic()
        while True:  # Ray gives a removed group's resources back a moment later
            left = ray.available_resources().items()  # a group's own bundle resources are named …_group_…
            free = {k: v for k, v in left if k.startswith("tuxai_gpu_") and "_group_" not in k}
            if len(free) == 4 - len(busy) and set(free).isdisjoint(busy) and all(v == 1.0 for v in free.values()):
                break
            assert time.monotonic() - began < 10, (free, busy)
            time.sleep(0.1)
        again.cancel(running, ROOT, time.time())
        _until_ended(again, running, 30)
        assert again.store.get(running).state is JobState.CANCELLED
    finally:
        again.executor.close()


def test_E15_a_rank_past_its_memory_limit_is_oom_killed_on_its_node_as_on_one_box(daemon: Daemon) -> None:
    """The node's launcher plans the rank's groups from the node's own cgroups (``executor.node_cgroups``):
    the rank's memory limit holds there, its OOM kill is the gang's end, and the other rank is stopped."""
    job_id = _submit(daemon, script=HOG, mem="64MiB", **GANG)
    pids = _pids(daemon, job_id, 1)  # node 0's waits (node 1's may be killed before its line is read)
    took = _until_ended(daemon, job_id, 30)
    job = daemon.store.get(job_id)
    assert job.state is JobState.FAILED, (job.reason, _logs(daemon, job_id))
    assert job.reason.startswith("out of memory: killed at the 64.0 MiB memory limit"), job.reason
    assert not any(_alive(pid) for pid in pids)
    print(f"the rank past its limit ended the gang {took:.1f} s after the first rank ran")


def test_E15_telemetry_comes_from_both_nodes_of_a_gang_and_top_lists_its_ranks(daemon: Daemon) -> None:
    """Each node's launcher samples its rank (CPU and memory from the rank's cgroup, its GPUs from the
    node's simulated inventory); the telemetry step folds them into the job's usage, energy and GPU use,
    and `tuxai top`'s frame lists each rank under the job with its node."""
    from tuxai.api.views import job_view, live_view
    from tuxai.cli.top_layout import TopState, frame
    from tuxai.daemon.telemetry import TelemetryLoop
    from tuxai.telemetry.collector import Telemetry, TelemetryConfig
    from tuxai.telemetry.samplers import NoGpuSampler

    spin = "import time\nend = time.time() + 60\nwhile time.time() < end: pass\n"  # busy: its GPUs follow its CPU
    job_id = _submit(daemon, script=spin, mem="256MiB", **GANG)
    loop = TelemetryLoop(daemon, Telemetry(NoGpuSampler(), TelemetryConfig()))  # this head has no GPU of its own
    try:
        began = time.monotonic()
        while len(loop.cluster.ranks.get(job_id, ()) if loop.cluster else ()) < 2 or loop.energy(job_id) is None:
            assert time.monotonic() - began < 30, (daemon.store.get(job_id), loop.cluster and loop.cluster.ranks)
            daemon.tick(time.time())
            loop.step(time.time())
            time.sleep(0.5)
        job = daemon.store.get(job_id)
        assert job.allocation is not None
        placed = {a.node: {g.uuid for g in a.gpus} for a in (job.allocation, *job.allocation.more)}
        ranks = loop.cluster.ranks[job_id] if loop.cluster else ()
        assert {r.node for r in ranks} == {"127.0.0.3", "127.0.0.4"}
        assert all({g.uuid for g in r.gpus} == placed[r.node] for r in ranks)  # each node's own GPUs, sampled there
        assert all(r.memory_bytes > 0 for r in ranks)
        usage = loop.telemetry.usage[job_id]
        assert usage.cpu_s == sum(r.cpu_s for r in ranks) and usage.cpu_s > 0
        energy = loop.energy(job_id)
        assert energy is not None and energy["gpu_util_mean_pct"] is not None, energy
        view = live_view(loop, daemon.config.inventory, daemon.store.jobs(), ROOT, False)
        jobs = [job_view(j, time.time()) for j in daemon.store.jobs()]  # as GET /v1/jobs answers `tuxai top`
        shown = "\n".join(line.plain for line in frame(view, [], jobs, TopState(), (160, 40), "now"))
        for rank in ranks:
            assert re.search(rf"^  └ rank {rank.rank} on {re.escape(rank.node)}  CPU \d+s  MEM ", shown, re.M), shown
        print("\n".join(line for line in shown.splitlines() if line.startswith((f"{job_id} ", "  └"))))
    finally:
        daemon.cancel(job_id, ROOT, time.time())
        _until_ended(daemon, job_id, 30)
