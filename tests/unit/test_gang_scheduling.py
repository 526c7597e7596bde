"""Gangs across nodes in ``decide`` (scheduler.gang): all or nothing, one job to backfill and reservations."""

from __future__ import annotations

from tests.scheduler_helpers import job, run, started
from tests.unit.test_gang_admission import _node
from tuxai.model.resources import Allocation, GpuShare
from tuxai.scheduler import Reject, Reserve, Running
from tuxai.scheduler.config import BACKFILL

CLUSTER = (_node("head", 0, 1), _node("w1", 2), _node("w2", 2))


def _busy(node: str, index: int, until: float, job_id: str = "busy") -> Running:
    """A one-GPU job on ``node``'s GPU ``index`` whose time limit ends at ``until`` (started at 0)."""
    return Running(job(job_id, 1, time_limit_s=until), Allocation(node, (GpuShare(index, None),), (1,)), 0.0)


def test_E15_a_gang_starts_on_as_many_distinct_nodes_as_it_asks() -> None:
    (start,) = started(run(CLUSTER, (job("g", 2, nodes=2),))).values()
    nodes = [start.allocation.node, *(a.node for a in start.allocation.more)]
    assert sorted(nodes) == ["w1", "w2"]
    assert all(len(a.gpus) == 2 for a in (start.allocation, *start.allocation.more))


def test_E15_a_gang_is_all_or_nothing_and_names_the_nodes_it_waits_for() -> None:
    decisions = run(CLUSTER, (job("g", 2, nodes=2),), running=(_busy("w2", 1, 500.0),), config=BACKFILL)
    assert started(decisions) == {}  # w1 alone could hold a share: nothing starts
    (reserve,) = [d for d in decisions if isinstance(d, Reserve)]
    assert reserve.at == 500.0 and sorted(str(reserve.explanation["reserved_on"]).split(", ")) == ["w1", "w2"]
    assert reserve.explanation["reason"] == (
        "waiting for 2 nodes with 2 free GPUs each (short now: on w2: 1 of 2 GPUs); 1 can take one now (w1)"
    )


def test_E15_a_small_job_backfills_beside_a_waiting_gang_only_when_it_ends_before_the_reservation() -> None:
    running = (_busy("w2", 1, 500.0),)
    short = job("short", 1, time_limit_s=100.0, at=1.0)
    long = job("long", 1, time_limit_s=10_000.0, at=2.0)
    decisions = run(CLUSTER, (job("g", 2, nodes=2), short, long), now=100.0, running=running, config=BACKFILL)
    starts = started(decisions)
    assert set(starts) == {"short"} and starts["short"].backfilled  # done at 200, before the gang's 500
    assert [d.job_id for d in decisions if isinstance(d, Reserve)] == ["g"]


def test_a_running_gang_holds_every_node_it_runs_on() -> None:
    first = started(run(CLUSTER, (job("g", 2, nodes=2),)))["g"]
    gang = Running(job("g", 2, nodes=2), first.allocation, 0.0)
    assert started(run(CLUSTER, (job("one", 1),), running=(gang,))) == {}


def test_E15_an_impossible_gang_is_rejected_with_the_clusters_shape() -> None:
    (reject,) = run(CLUSTER, (job("g", 2, nodes=3),))
    assert isinstance(reject, Reject)
    assert reject.reason.startswith(
        "asks 3 nodes × 2 GPUs; the cluster has 2 nodes with 2 GPUs each, 1 node with no GPU"
    )


def test_a_gang_of_one_node_is_an_ordinary_job() -> None:
    (start,) = started(run(CLUSTER, (job("g", 2, nodes=1),))).values()
    assert start.allocation.more == () and start.allocation.node in ("w1", "w2")
