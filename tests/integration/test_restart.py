"""The daemon killed with SIGKILL while jobs run and while submits arrive: nothing lost, nothing twice."""

from __future__ import annotations

import collections
import random
import threading
import time
from pathlib import Path

from tests.daemon_helpers import DaemonProcess, finish, shell
from tuxai.api.client import Client
from tuxai.errors import DaemonError


def _wait_running(daemon: DaemonProcess, ids: list[int], timeout_s: float = 20.0) -> None:
    """Until every job printed ``started`` (the store says running before the shim starts it)."""
    deadline = time.monotonic() + timeout_s
    logs = [daemon.home / "jobs" / str(i) / "output.log" for i in ids]
    while time.monotonic() < deadline:
        if all(p.exists() and "started" in p.read_text() for p in logs):
            return
        time.sleep(0.02)
    raise AssertionError("jobs did not start")


def test_running_jobs_are_adopted_with_their_real_exit_status(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        failing = daemon.client.submit(shell("echo started; sleep 1.5; exit 3"))
        passing = daemon.client.submit(shell("echo started; sleep 1.5; echo done"))
        _wait_running(daemon, [failing, passing])
        daemon.kill9()
        time.sleep(2.0)  # both jobs end while no daemon runs
        daemon.start()
        jobs = daemon.wait_all([failing, passing])
        assert (jobs[failing].state, jobs[failing].exit_code) == ("failed", 3)
        assert (jobs[passing].state, jobs[passing].exit_code) == ("succeeded", 0)
        assert jobs[failing].attempt == jobs[passing].attempt == 1
        assert daemon.log(passing) == "started\ndone\n"
    finally:
        finish(daemon)


def test_still_running_job_is_adopted_and_can_be_cancelled(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        job_id = daemon.client.submit(shell("trap 'exit 5' TERM; echo started; sleep 60 & wait", grace="5s"))
        _wait_running(daemon, [job_id])
        daemon.kill9()
        daemon.start()
        assert daemon.job(job_id).state == "running"
        daemon.client.cancel(job_id)
        job = daemon.wait_all([job_id])[job_id]
        assert job.state == "cancelled" and job.exit_code == 5 and job.attempt == 1
    finally:
        finish(daemon)


def test_kill9_at_random_moments_during_a_burst_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    ledger = tmp_path / "ledger"
    daemon = DaemonProcess(tmp_path / "home").start()
    acknowledged: list[int] = []
    refused = 0
    done = threading.Event()

    def submit_burst() -> None:
        # Until 60 submits are acknowledged (at most 60 s): a daemon that is down while it
        # restarts refuses some, and how many depends on how fast this machine starts it.
        nonlocal refused
        deadline = time.monotonic() + 60
        with Client.for_home(daemon.home, timeout_s=10) as client:
            i = 0
            while len(acknowledged) < 60 and time.monotonic() < deadline:
                i += 1
                pause = rng.choice(("0", "0.05", "0.2"))
                try:
                    acknowledged.append(client.submit(shell(f"echo $TUXAI_JOB_ID >> {ledger}; sleep {pause}")))
                except DaemonError:
                    refused += 1  # not acknowledged: may or may not exist, must not run twice either way
                    time.sleep(0.02)
                if i % 10 == 0:
                    time.sleep(0.05)
        done.set()

    submitter = threading.Thread(target=submit_burst)
    submitter.start()
    try:
        kills = 0
        while not done.is_set() or kills < 3:
            time.sleep(rng.uniform(0.1, 0.6))
            daemon.kill9()
            kills += 1
            time.sleep(rng.uniform(0.0, 0.3))
            daemon.start()
        submitter.join()
        stored = {j.id: j for j in daemon.client.jobs()}
        finished = daemon.wait_all(list(stored), timeout_s=90)
        assert set(acknowledged) <= set(stored), "an acknowledged submit was lost"
        assert len(acknowledged) >= 45, f"only {len(acknowledged)} submits got through"
        assert {j.state for j in finished.values()} == {"succeeded"}
        runs = collections.Counter(int(line) for line in ledger.read_text().split())
        assert set(runs) == set(stored)
        assert max(runs.values()) == 1, f"jobs ran twice: {[i for i, n in runs.items() if n > 1]}"
    finally:
        done.set()
        submitter.join(timeout=30)
        finish(daemon)
