"""The daemon on the Ray cluster (issue 15, pieces 2-5): its queue, store and policy; the cluster's nodes;
decisions run by the Ray executor. Driven by ``Daemon.tick(now)`` in this process (the `tuxai up --ray`
process wiring is not built yet); the job is examples/jobs/ddp.py unchanged, 2 nodes × 2 ranks (gloo)."""

from __future__ import annotations

import re
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
from tuxai.errors import UsageError
from tuxai.executor.ray import RayExecutor
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


@pytest.fixture(scope="module")
def daemon(ray_cluster: LocalRayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon whose nodes are the cluster's and whose executor is Ray's (one per module)."""
    home = tmp_path_factory.mktemp("home")
    view = ClusterView(ray_cluster.address)
    config = DaemonConfig(home, load_inventory_file(ray_cluster.nodes[0].inventory))
    executor = RayExecutor(view.connect, str(home / "nodes"))
    store = Store(home / "tuxai.db")
    yield Daemon(config, store, executor, RayNodes(view, refresh_s=1.0))
    store.close()


def _submit(daemon: Daemon, *args: str, **fields: object) -> int:
    spec = spec_from_dict({"command": ["python", "ddp.py", *args], "workdir": str(JOBS), **fields}, origin="test")
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
