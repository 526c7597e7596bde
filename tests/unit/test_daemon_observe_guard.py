"""The control loop against what a user can write (security review, session 5): one job's attempt
that cannot be observed never stops the pass for everybody (S4), and a recorded end is clamped into
what the daemon saw before it is charged (S7). ``Daemon.tick(now)`` on a real store and the fake
executor (tests/fake_executor.py), whose ``observe`` fails for the attempts the test names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_executor import FakeExecutor
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.executor.attempt import AttemptHandle, Observed
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict
from tuxai.store.jobs import Store

REPO = Path(__file__).parent.parent.parent
ADA = Caller("ada", 1000, 1000)
T0 = 1_000_000.0


class BrokenAttempts(FakeExecutor):
    """The fake executor, whose ``observe`` raises for the run directories in ``broken``
    (as the Slurm backend did on a node's ``run-x`` before S4)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[Path] = set()

    def observe(self, handle: AttemptHandle) -> Observed:
        if Path(handle) in self.broken:
            raise ValueError("invalid literal for int() with base 10: 'x'")
        return super().observe(handle)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    inventory = load_inventory_file(REPO / "examples" / "inventories" / "two-gpu-box.yaml")
    store = Store(tmp_path / "tuxai.db")
    try:
        yield Daemon(DaemonConfig(tmp_path, inventory, online_cpus=(0, 1)), store, BrokenAttempts())
    finally:
        store.close()


def _started(daemon: Daemon, count: int) -> list[tuple[int, Path]]:
    """``count`` one-GPU jobs submitted, started at T0 and claimed by their shims."""
    spec = spec_from_dict({"command": ["python", "train.py"], "gpus": 1}, origin="test")
    jobs = [daemon.submit(spec, ADA, {}, T0) for _ in range(count)]
    daemon.tick(T0)
    runs = [(job, Path(daemon.store.get(job).run_dir)) for job in jobs]
    fake = daemon.executor
    assert isinstance(fake, FakeExecutor)
    for _, run_dir in runs:
        assert fake.claim(run_dir, T0)
    return runs


def test_S4_one_jobs_broken_attempt_never_stops_the_pass(daemon: Daemon) -> None:
    fake = daemon.executor
    assert isinstance(fake, BrokenAttempts)
    (broken, broken_dir), (fine, fine_dir) = _started(daemon, 2)
    fake.broken.add(broken_dir)
    fake.exit(fine_dir, T0 + 5)
    daemon.tick(T0 + 10)
    daemon.reconcile(T0 + 11)
    assert daemon.store.get(fine).state is JobState.SUCCEEDED  # the pass went on past the broken one
    record = daemon.store.get(broken)
    assert record.state is JobState.RUNNING and "could not be observed (ValueError)" in record.reason
    fake.broken.clear()
    fake.exit(broken_dir, T0 + 12)
    daemon.tick(T0 + 13)
    assert daemon.store.get(broken).state is JobState.SUCCEEDED  # looked at again at the next pass


def test_S7_a_recorded_end_is_clamped_into_what_the_daemon_saw(daemon: Daemon) -> None:
    fake = daemon.executor
    assert isinstance(fake, FakeExecutor)
    (past, past_dir), (future, future_dir) = _started(daemon, 2)
    fake.exit(past_dir, T0 - 10_000)  # ended before it started: nothing to charge, the window skipped
    fake.exit(future_dir, T0 + 1e12)  # ended in the year 30,000: charged for ages
    daemon.tick(T0 + 100)
    assert daemon.store.get(past).ended_at == T0
    assert daemon.store.get(future).ended_at == T0 + 100
    assert daemon.store.usage()["ada"].gpu_seconds == pytest.approx(100.0)  # the one job that ran to now
