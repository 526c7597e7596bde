"""The daemon over a cluster's nodes (daemon.cluster): gangs placed on every node they ask, held whole
while they run, charged for every node's GPUs (issue 15). Driven by ``tick(now)`` with the fake executor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_executor import FakeExecutor
from tests.unit.test_gang_admission import _node
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.errors import UsageError
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict
from tuxai.scheduler.snapshot import Node
from tuxai.store.jobs import Store

ADA = Caller("ada", 1000, 1000)
T0 = 1000.0


class StaticNodes:
    """A cluster whose nodes never change."""

    def __init__(self, *nodes: Node) -> None:
        self._nodes = nodes

    def nodes(self) -> tuple[Node, ...]:
        """The nodes, as given."""
        return self._nodes


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Daemon, FakeExecutor]]:
    head = _node("head", 0, 1)
    store = Store(tmp_path / "tuxai.db")
    fake = FakeExecutor()
    try:
        yield (
            Daemon(
                DaemonConfig(tmp_path, head.inventory), store, fake, StaticNodes(head, _node("w1", 2), _node("w2", 2))
            ),
            fake,
        )
    finally:
        store.close()


def _gang(daemon: Daemon, now: float = T0, nodes: int = 2) -> int:
    spec = spec_from_dict({"command": ["python", "t.py"], "nodes": nodes, "gpus_per_node": 2, "launcher": "none"}, "t")
    return daemon.submit(spec, ADA, {}, now)


def test_E15_a_running_gang_holds_both_nodes_and_is_charged_for_every_gpu(
    rig: tuple[Daemon, FakeExecutor],
) -> None:
    daemon, fake = rig
    first, second = _gang(daemon), _gang(daemon, T0 + 1)
    daemon.tick(T0 + 2)
    job = daemon.store.get(first)
    assert job.state is JobState.RUNNING and job.allocation is not None
    assert sorted(a.node for a in (job.allocation, *job.allocation.more)) == ["w1", "w2"]
    assert daemon.store.get(second).state is JobState.PENDING  # the first holds every node it runs on
    daemon.tick(T0 + 3)
    assert daemon.store.get(second).state is JobState.PENDING
    handle = Path(job.run_dir)
    fake.claim(handle, T0 + 2)
    fake.exit(handle, T0 + 102)
    daemon.tick(T0 + 102)
    assert daemon.store.get(first).state is JobState.SUCCEEDED
    assert daemon.store.usage()["ada"].gpu_seconds == pytest.approx(4 * 100.0)  # 2 nodes × 2 GPUs × 100 s
    assert daemon.store.get(second).state is JobState.RUNNING


def test_E15_a_gang_no_node_set_can_hold_is_refused_at_submit_naming_the_cluster(
    rig: tuple[Daemon, FakeExecutor],
) -> None:
    daemon, _ = rig
    with pytest.raises(UsageError, match=r"^impossible gang: asks 3 nodes × 2 GPUs; the cluster has 2 nodes"):
        _gang(daemon, nodes=3)
