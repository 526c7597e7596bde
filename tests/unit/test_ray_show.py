"""`tuxai show` of a gang (issue 15): each node with its GPUs, each rank's end, from the gang's status
through the store to the API's view (the tier's ``tuxai up --ray auto`` test runs the real command)."""

from __future__ import annotations

from pathlib import Path

from tuxai.api.views import job_view
from tuxai.daemon.outcome import classify
from tuxai.executor.attempt import Observed, Seen
from tuxai.executor.gang_status import Verdict, gang_state
from tuxai.executor.rundir import Phase, Status
from tuxai.model.job import JobState, StopReason
from tuxai.model.jobfile import spec_from_dict
from tuxai.model.resources import Allocation, GpuShare
from tuxai.store.jobs import Store

NODES = ["127.0.0.3", "127.0.0.4"]


def test_E15_a_gangs_status_names_every_ranks_end() -> None:
    stopped = Status(Phase.EXITED, 1, exit_code=None, signal=15, stop_reason=StopReason.SHUTDOWN, ended_at=5.0)
    failed = Status(Phase.EXITED, 1, exit_code=1, ended_at=4.0)
    state = gang_state([Observed(Seen.EXITED, stopped), Observed(Seen.EXITED, failed)], NODES, 6.0)
    assert state.verdict is Verdict.ENDED and state.status is not None
    assert state.status.rank_exits == ("signal 15 (stopped: shutdown)", "exit 1")
    lost = gang_state([Observed(Seen.EXITED, stopped), Observed(Seen.LOST, None)], NODES, 6.0).status
    assert lost is not None and lost.rank_exits == ("signal 15 (stopped: shutdown)", "its node was lost")


def test_E15_show_lists_each_nodes_gpus_and_each_ranks_exit(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuxai.db")
    try:
        spec = spec_from_dict({"command": ["true"], "nodes": 2, "gpus_per_node": 2, "launcher": "none"}, "t")
        job_id = store.submit(spec, ("ada", 1000, 1000, ()), {}, 1.0)
        gpus = [(GpuShare(0, "GPU-a"), GpuShare(1, "GPU-b")), (GpuShare(0, "GPU-c"), GpuShare(1, "GPU-d"))]
        placed = Allocation(NODES[0], gpus[0], more=(Allocation(NODES[1], gpus[1]),))
        store.transition(job_id, JobState.RUNNING, 2.0, "", allocation=placed, started_at=2.0)
        ended = gang_state(
            [Observed(Seen.EXITED, Status(Phase.EXITED, 1, exit_code=0, ended_at=3.0))] * 2, NODES, 3.0
        ).status
        assert ended is not None
        outcome = classify(store.get(job_id), ended, 3.0)
        store.transition(job_id, outcome.state, 3.0, outcome.reason, **outcome.fields)
        view = job_view(store.get(job_id), 4.0)
    finally:
        store.close()
    assert view.state is JobState.SUCCEEDED
    assert view.ranks == ("127.0.0.3:0,1", "127.0.0.4:0,1")  # each node's GPUs, rank order
    assert view.rank_exits == ("exit 0", "exit 0")


def test_E15_a_gangs_rank_exits_come_back_from_its_status_file_as_written(tmp_path: Path) -> None:
    from tuxai.executor.rundir import read_status, write_status

    ended = Status(Phase.EXITED, 1, exit_code=1, ended_at=3.0, rank_exits=("exit 1", "its node was lost"))
    write_status(tmp_path, ended)
    assert read_status(tmp_path) == ended
