"""The control loop through the races that only timing reaches with real processes.

``Daemon.tick(now)`` on a real store (SQLite in a temporary directory) and a fake executor
whose shims the test plays (tests/fake_executor.py): cancel against exit, preemption
against a job requeueing itself, a shim that never claims its attempt, a daemon restart
between the start and the claim. Every table row says what happened, in which order, and
what the job must become; none may run an attempt twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fake_executor import FakeExecutor
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.core import START_TIMEOUT_S, Daemon
from tuxai.errors import UsageError
from tuxai.executor.rundir import read_launch
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict
from tuxai.store.jobs import Store

REPO = Path(__file__).parent.parent.parent
ADA = Caller("ada", 1000, 1000)
T0 = 1_000_000.0


@dataclass
class Rig:
    """A daemon, its store and the fake executor, on the simulated 2-GPU box."""

    daemon: Daemon
    store: Store
    fake: FakeExecutor
    home: Path

    def submit(self, now: float = T0, **spec: Any) -> int:
        fields = {"command": ["python", "train.py"], **spec}
        return self.daemon.submit(spec_from_dict(fields, origin="test"), ADA, {}, now)

    def run_dir(self, job_id: int) -> Path:
        return Path(self.store.get(job_id).run_dir)

    def start_and_lose(self, now: float = T0) -> tuple[int, Path]:
        """A job with one retry started, its shim claimed it and was killed (kill -9): seen at ``now + 1``."""
        job = self.submit(now, retries=1)
        self.daemon.tick(now)
        run_dir = self.run_dir(job)
        self.fake.claim(run_dir, now)
        self.fake.die(run_dir)
        self.daemon.tick(now + 1)
        return job, run_dir

    def state(self, job_id: int) -> JobState:
        return self.store.get(job_id).state

    def history(self, job_id: int) -> list[tuple[str, str]]:
        """(state, reason) of each transition, oldest first (a waiting job's reason is overwritten)."""
        return [(e["to_state"], e["reason"]) for e in self.store.events(job_id)]

    def restart(self) -> Rig:
        """A new daemon over the same store and the same machine (run directories, shims)."""
        config = self.daemon.config
        return Rig(Daemon(config, self.store, self.fake), self.store, self.fake, self.home)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    inventory = load_inventory_file(REPO / "examples" / "inventories" / "two-gpu-box.yaml")
    config = DaemonConfig(tmp_path, inventory, online_cpus=(0, 1))
    store = Store(tmp_path / "tuxai.db")
    fake = FakeExecutor()
    try:
        yield Rig(Daemon(config, store, fake), store, fake, tmp_path)
    finally:
        store.close()


def running_attempts(rig: Rig) -> list[Path]:
    return [p for p, a in rig.fake.attempts.items() if a.alive]


# ---- cancel against exit -----------------------------------------------------------------

CANCEL_VS_EXIT = [
    # (what happens, in order) → (state, reason contains)
    pytest.param(["exit 0", "cancel", "tick"], JobState.SUCCEEDED, "", id="exited-before-the-cancel-reached-it"),
    pytest.param(["exit 3", "cancel", "tick"], JobState.FAILED, "exit code 3", id="failed-before-the-cancel"),
    pytest.param(["cancel", "tick", "exit TERM", "tick"], JobState.CANCELLED, "cancelled", id="killed-by-the-cancel"),
    pytest.param(["cancel", "exit 0 after TERM", "tick"], JobState.CANCELLED, "cancelled", id="trapped-term-exit-0"),
    pytest.param(["cancel", "cancel", "exit TERM", "tick"], JobState.CANCELLED, "cancelled", id="cancelled-twice"),
]


@pytest.mark.parametrize(("steps", "state", "reason"), CANCEL_VS_EXIT)
def test_cancel_against_exit(rig: Rig, steps: list[str], state: JobState, reason: str) -> None:
    job = rig.submit()
    rig.daemon.tick(T0)
    run_dir = rig.run_dir(job)
    assert rig.fake.claim(run_dir, T0)
    now = T0
    for step in steps:
        now += 1
        if step == "cancel":
            rig.daemon.cancel(job, ADA, now)
        elif step == "tick":
            rig.daemon.tick(now)
        elif step == "exit TERM":
            rig.fake.exit(run_dir, now, code=None, signal=15, stop="cancel")
        elif step == "exit 0 after TERM":
            rig.fake.exit(run_dir, now, code=0, stop="cancel")
        else:
            rig.fake.exit(run_dir, now, code=int(step.split()[1]))
        if step == "cancel" and rig.state(job) is JobState.RUNNING:
            assert "cancelling" in rig.store.get(job).reason
    record = rig.store.get(job)
    assert record.state is state and reason in record.reason, record.reason
    assert rig.fake.started == [run_dir]  # one attempt, never a second
    with pytest.raises(UsageError, match="already ended"):
        rig.daemon.cancel(job, ADA, now + 1)


# ---- preemption against a job that requeues itself -------------------------------------

PREEMPT_VS_REQUEUE = [
    # how the victim ends → (its state, requeues counted, reason contains)
    pytest.param("checkpoint on its own", True, JobState.REQUEUED, 1, "checkpoint saved", id="requeued-itself-first"),
    pytest.param("checkpoint after TERM", True, JobState.REQUEUED, 0, "preempted for job", id="preempted-checkpointed"),
    pytest.param("killed after grace", True, JobState.REQUEUED, 0, "preempted for job", id="preempted-killed"),
    pytest.param("killed after grace", False, JobState.PREEMPTED, 0, "requeue off", id="preempted-not-requeued"),
]


@pytest.mark.parametrize(("ending", "requeue", "state", "requeues", "reason"), PREEMPT_VS_REQUEUE)
def test_preemption_against_a_job_requeueing_itself(
    rig: Rig, ending: str, requeue: bool, state: JobState, requeues: int, reason: str
) -> None:
    low = rig.submit(gpus=2, preemptible=True, requeue=requeue, priority=0)
    rig.daemon.tick(T0)
    victim = rig.run_dir(low)
    assert rig.fake.claim(victim, T0)
    high = rig.submit(T0 + 10, gpus=2, priority=100)
    rig.daemon.tick(T0 + 10)
    assert rig.store.get(low).stop_request == "preempt" and rig.fake.attempts[victim].stops == ["preempt"]
    assert rig.state(high) is JobState.PENDING  # waits for the GPUs to be given back
    if ending == "checkpoint on its own":
        rig.fake.exit(victim, T0 + 11, code=99)  # before the SIGTERM reached it
    elif ending == "checkpoint after TERM":
        rig.fake.exit(victim, T0 + 11, code=99, stop="preempt")
    else:
        rig.fake.exit(victim, T0 + 11, code=None, signal=9, stop="preempt")
    rig.daemon.tick(T0 + 12)
    record = rig.store.get(low)
    ended_as, why = rig.history(low)[-1]
    assert (record.state, ended_as) == (state, state.value) and reason in why, why
    assert record.requeues == requeues and record.failures == 0
    assert rig.state(high) is JobState.RUNNING  # the preemptor got the GPUs in the same tick
    assert running_attempts(rig) == [] and len(rig.fake.started) == 2  # low once, high once
    rig.fake.claim(rig.run_dir(high), T0 + 12)
    rig.daemon.tick(T0 + 13)
    assert rig.state(low) in (JobState.PREEMPTED, JobState.REQUEUED)  # never back while high runs
    assert len(rig.fake.started) == 2


# ---- a shim that never claims its attempt, a restart between start and claim ------------


def test_a_shim_that_never_claims_is_given_up_and_the_job_runs_again_once(rig: Rig) -> None:
    job = rig.submit()
    rig.daemon.tick(T0)
    first = rig.run_dir(job)
    rig.daemon.tick(T0 + START_TIMEOUT_S / 2)
    assert rig.state(job) is JobState.RUNNING  # it may still be on its way
    rig.daemon.tick(T0 + START_TIMEOUT_S + 1)  # given up, and started again in the same pass
    given_up, again = rig.history(job)[-2:]
    assert given_up[0] == "requeued" and "shim never started" in given_up[1] and again[0] == "running"
    assert rig.store.get(job).failures == 0
    assert not rig.fake.claim(first, T0 + START_TIMEOUT_S + 2)  # a late shim gives it up
    second = rig.run_dir(job)
    assert second != first and second.name == "run-2" and rig.fake.started == [first, second]
    assert rig.fake.claim(second, T0 + START_TIMEOUT_S + 3)


@pytest.mark.parametrize("claimed", [False, True], ids=["before-the-claim", "after-the-claim"])
def test_a_restart_between_start_and_claim(rig: Rig, claimed: bool) -> None:
    job = rig.submit()
    rig.daemon.tick(T0)
    first = rig.run_dir(job)
    if claimed:
        rig.fake.claim(first, T0)
    after = rig.restart()  # the old daemon is gone; the store and the shims are not
    after.daemon.reconcile(T0 + 1)
    if claimed:
        assert after.state(job) is JobState.RUNNING  # adopted
        rig.fake.exit(first, T0 + 5, code=0)
        after.daemon.tick(T0 + 6)
        assert after.state(job) is JobState.SUCCEEDED and after.store.get(job).attempt == 1
        assert rig.fake.started == [first]
        return
    record = after.store.get(job)
    assert record.state is JobState.REQUEUED and "daemon stopped before the job started" in record.reason
    assert not rig.fake.claim(first, T0 + 2)  # the shim of the old daemon arrives too late
    after.daemon.tick(T0 + 3)
    assert rig.fake.started == [first, after.run_dir(job)] and after.store.get(job).attempt == 2


def test_a_shim_that_dies_after_its_claim_is_killed_through_what_proves_it_and_retried(rig: Rig) -> None:
    job, run_dir = rig.start_and_lose()
    record = rig.store.get(job)
    assert record.state is JobState.REQUEUED and record.failures == 1 and "shim died" in rig.history(job)[-1][1]
    assert record.eligible_at == T0 + 1 + 5  # the retry waits its backoff from when the loss was seen
    rig.daemon.tick(T0 + 2)
    assert rig.state(job) is JobState.REQUEUED and rig.fake.started == [run_dir]
    assert len(rig.fake.killed) == 1  # what was left of it, through its cgroup and its proven group


def test_a_vanished_run_directory_fails_the_job_and_never_starts_it_again(rig: Rig) -> None:
    job = rig.submit(retries=3)
    rig.daemon.tick(T0)
    run_dir = rig.run_dir(job)
    rig.fake.claim(run_dir, T0)
    del rig.fake.attempts[run_dir]  # tmpwatch, an admin's rm -rf: nothing says it ended
    rig.daemon.tick(T0 + 1)
    record = rig.store.get(job)
    assert record.state is JobState.FAILED and "vanished" in record.reason
    rig.daemon.tick(T0 + 100)
    assert rig.fake.started == [run_dir] and len(rig.fake.killed) == 1


def test_an_attempt_whose_record_a_power_cut_erased_is_never_reused(rig: Rig) -> None:
    job, first = rig.start_and_lose()  # requeued, after its backoff
    (first.parent / "run-2").mkdir()  # attempt 2 was prepared (perhaps ran), and the store lost it
    rig.daemon.tick(T0 + 7)
    third = rig.run_dir(job)
    assert third.name == "run-3" and rig.store.get(job).attempt == 3 and rig.fake.started == [first, third]
    assert read_launch(third).attempt == 3 and read_launch(third).env["TUXAI_ATTEMPT"] == "3"  # described anew


# ---- retention ---------------------------------------------------------------------------


def test_ended_jobs_past_their_retention_are_forgotten_with_their_files(rig: Rig) -> None:
    old = rig.submit()
    rig.daemon.tick(T0)
    rig.fake.claim(rig.run_dir(old), T0)
    rig.fake.exit(rig.run_dir(old), T0 + 10)
    rig.daemon.tick(T0 + 10)
    recent = rig.submit(T0 + 20)
    rig.daemon.tick(T0 + 20)
    rig.fake.claim(rig.run_dir(recent), T0 + 20)
    old_dir = rig.run_dir(old).parent
    assert old_dir.is_dir() and (old_dir / "run-1" / "launch.json").exists()
    keep = rig.daemon.config.keep_finished_s
    assert keep == 365 * 86400.0  # the default: a year
    assert rig.daemon.prune_finished(T0 + keep) == []  # not yet a year
    assert rig.daemon.prune_finished(T0 + keep + 11) == [old]
    assert not old_dir.exists() and rig.run_dir(recent).parent.is_dir()
    assert [j.id for j in rig.store.jobs()] == [recent]  # still running: kept, however old
    assert rig.store.events(old) == []
    assert rig.submit(T0 + keep + 12) == recent + 1  # ids are never handed out again
