"""A Ray cluster that stops answering (issue 15): the daemon says so in its log and in every pending
job's reason and starts nothing until Ray answers again; the last node list is never taken silently.
Ray's side is a stand-in (``DownView``: the ``ClusterView`` boundary), the daemon real, its executor the fake."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fake_executor import FakeExecutor
from tests.unit.test_gang_admission import _node
from tuxai.cluster.ray_nodes import ClusterView
from tuxai.daemon.cluster import RayNodes
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.errors import ClusterError
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict
from tuxai.scheduler.snapshot import Node
from tuxai.store.jobs import Store

ADA = Caller("ada", 1000, 1000)
WORKERS = (_node("127.0.0.3", 2), _node("127.0.0.4", 2))


class DownView(ClusterView):
    """Ray's nodes, or Ray's own error from ``ray.nodes()`` while ``down``."""

    def __init__(self) -> None:
        super().__init__("127.0.0.2:6379")
        self.down = False

    def connect(self) -> Any:
        """A stand-in for the joined ``ray`` module: ``nodes()`` fails like Ray's GCS client does."""

        def nodes() -> list[dict[str, object]]:
            if self.down:
                raise ConnectionError("GCS at 127.0.0.2:6379 unreachable")
            return []

        return SimpleNamespace(nodes=nodes)

    def refresh(self) -> tuple[Node, ...]:
        """The workers; Ray's error turned into ``ClusterError`` by the real ``refresh`` while down."""
        return super().refresh() if self.down else WORKERS


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Daemon, DownView, RayNodes]]:
    store = Store(tmp_path / "tuxai.db")
    view = DownView()
    nodes = RayNodes(view, refresh_s=0.0)
    try:
        yield Daemon(DaemonConfig(tmp_path, WORKERS[0].inventory), store, FakeExecutor(), nodes), view, nodes
    finally:
        store.close()


def _submit(daemon: Daemon, now: float) -> int:
    return daemon.submit(spec_from_dict({"command": ["true"], "gpus": 1}, "t"), ADA, {}, now)


def test_E15_ray_down_is_said_in_the_log_and_the_pending_reason_and_nothing_starts(
    rig: tuple[Daemon, DownView, RayNodes], caplog: pytest.LogCaptureFixture
) -> None:
    daemon, view, nodes = rig
    first = _submit(daemon, 1000.0)
    daemon.tick(1000.0)
    assert daemon.store.get(first).state is JobState.RUNNING
    waiting = _submit(daemon, 1001.0)  # admitted while Ray answered
    view.down = True
    with caplog.at_level(logging.WARNING, logger="tuxai.daemon"):
        daemon.tick(1002.0)
        daemon.tick(1003.0)
    job = daemon.store.get(waiting)
    assert job.state is JobState.PENDING  # not started on the last list, nor rejected for want of nodes
    assert "; the Ray cluster does not answer (cannot list the nodes of 127.0.0.2:6379: GCS at 127.0.0.2:6379 " in (
        job.reason
    )
    assert job.reason.endswith("): nothing starts until it does"), job.reason
    assert "nodes last read " in nodes.problem
    said = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(said) == 1 and said[0] == nodes.problem  # once, not at every tick
    view.down = False
    with caplog.at_level(logging.WARNING, logger="tuxai.daemon"):
        daemon.tick(1004.0)
    assert daemon.store.get(waiting).state is JobState.RUNNING
    assert nodes.problem == ""
    assert caplog.records[-1].getMessage() == "the Ray cluster answers again: 2 node(s)"


def test_E15_rays_own_error_from_a_node_read_becomes_one_cluster_error() -> None:
    view = DownView()
    view.down = True
    with pytest.raises(ClusterError) as failed:
        view.refresh()
    assert failed.value.message == ("cannot list the nodes of 127.0.0.2:6379: GCS at 127.0.0.2:6379 unreachable")
