"""Dependencies and arrays through ``Daemon.tick(now)`` on a real store and a fake executor: the %N cap
holds tick after tick, a never-satisfiable chain falls in one tick, an array's cancel is one pass,
and a tick over a thousand waiting tasks stays quick."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_executor import FakeExecutor
from tests.unit.test_daemon_races import ADA, REPO, T0, Rig
from tuxai.daemon.arrays import array_environment, cancel_array, hold_array
from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.errors import PermissionDenied, UsageError
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobState
from tuxai.store.arrays import array_tasks
from tuxai.store.jobs import Store

BOB = ADA.__class__("bob", 1001, 1001)


@pytest.fixture
def big(tmp_path: Path) -> Iterator[Rig]:
    """The simulated DGX (8 GPUs, 256 CPUs): room for every task at once."""
    inventory = load_inventory_file(REPO / "examples" / "inventories" / "dgx-a100.yaml")
    store = Store(tmp_path / "tuxai.db")
    fake = FakeExecutor()
    try:
        yield Rig(Daemon(DaemonConfig(tmp_path, inventory, online_cpus=(0, 1)), store, fake), store, fake, tmp_path)
    finally:
        store.close()


def _running(rig: Rig, array: int) -> list[int]:
    return [t.id for t in array_tasks(rig.store, array) if t.state is JobState.RUNNING]


def test_the_cap_holds_tick_after_tick_and_the_lowest_indices_go_first(big: Rig) -> None:
    array = big.submit(array="0-9%3")
    now = T0
    most = 0
    while any(not t.state.terminal for t in array_tasks(big.store, array)):
        now += 1
        big.daemon.tick(now)
        running = _running(big, array)
        most = max(most, len(running))
        assert len(running) <= 3
        for job_id in running[:1]:  # one task ends per tick
            big.fake.claim(big.run_dir(job_id), now)
            big.fake.exit(big.run_dir(job_id), now)
    assert most == 3
    started = sorted(array_tasks(big.store, array), key=lambda t: (t.started_at, t.array_index))
    assert [t.array_index for t in started] == list(range(10))
    task = array_tasks(big.store, array)[4]
    assert array_environment(task) == {
        "TUXAI_ARRAY_INDEX": "4",
        "TUXAI_ARRAY_JOB_ID": str(array),
        "TUXAI_ARRAY_TASK_COUNT": "10",
        "TUXAI_ARRAY_TASK_MIN": "0",
        "TUXAI_ARRAY_TASK_MAX": "9",
    }


def test_a_never_satisfiable_chain_falls_in_one_tick(big: Rig) -> None:
    first = big.submit()
    chain = [big.submit(after=[str(first)])]
    for _ in range(4):
        chain.append(big.submit(after=[str(chain[-1])]))
    held = big.submit(after=[f"{first}:ok"], hold=True)  # held or not, it can never run
    big.daemon.tick(T0 + 1)
    big.fake.claim(big.run_dir(first), T0 + 1)
    big.fake.exit(big.run_dir(first), T0 + 2, code=1)
    big.daemon.tick(T0 + 2)
    assert {big.state(j) for j in [*chain, held]} == {JobState.CANCELLED}
    assert big.store.get(chain[0]).reason == f"dependency never satisfied: job {first} failed"
    assert big.store.get(chain[-1]).reason == f"dependency never satisfied: job {chain[-2]} was cancelled"
    assert big.store.get(chain[-1]).ended_at == T0 + 2  # it stops counting "waited"


def test_an_array_after_a_job_and_a_job_after_an_array(big: Rig) -> None:
    first = big.submit()
    array = big.submit(array="0-2", after=[str(first)])
    last = big.submit(after=[f"{array}:any"])
    big.daemon.wake.clear()
    big.daemon.tick(T0 + 1)
    assert _running(big, array) == [] and big.state(first) is JobState.RUNNING
    assert big.daemon.wake.is_set()  # the reasons were said before the start: once more, at once
    big.daemon.tick(T0 + 1.1)
    assert array_tasks(big.store, array)[0].reason == f"waits for job {first} to end ok (running)"
    big.fake.claim(big.run_dir(first), T0 + 1)
    big.fake.exit(big.run_dir(first), T0 + 2)
    big.daemon.tick(T0 + 2)
    big.daemon.tick(T0 + 2.1)
    assert len(_running(big, array)) == 3
    assert big.store.get(last).reason == f"waits for array {array} to end (3 running)"
    for job_id in _running(big, array):
        big.fake.claim(big.run_dir(job_id), T0 + 2)
        big.fake.exit(big.run_dir(job_id), T0 + 3, code=2)
    big.daemon.tick(T0 + 3)
    assert big.state(last) is JobState.RUNNING  # :any: every task ended, failed or not


def test_an_array_is_cancelled_and_held_by_its_owner_only(big: Rig) -> None:
    array = big.submit(array="0-4%2")
    big.daemon.tick(T0 + 1)
    with pytest.raises(PermissionDenied, match=f"array {array} belongs to ada: you cannot cancel it"):
        cancel_array(big.daemon, array, BOB, T0 + 2)
    tasks = cancel_array(big.daemon, array, ADA, T0 + 2)
    assert [t.state for t in tasks] == [JobState.RUNNING] * 2 + [JobState.CANCELLED] * 3
    assert all(t.reason == "cancelling (by ada)" for t in tasks[:2])
    with pytest.raises(UsageError, match="has no pending task to hold"):
        hold_array(big.daemon, array, ADA, True)


def test_a_tick_over_a_thousand_waiting_tasks_is_quick(big: Rig) -> None:
    started = time.perf_counter()
    array = big.submit(array="0-999%4")
    submitted = time.perf_counter() - started
    big.daemon.tick(T0 + 1)
    started = time.perf_counter()
    big.daemon.tick(T0 + 2)
    ticked = time.perf_counter() - started
    assert len(_running(big, array)) == 4
    assert submitted < 3.0 and ticked < 1.0, (submitted, ticked)  # about 0.3 s and 0.1 s on an idle core
