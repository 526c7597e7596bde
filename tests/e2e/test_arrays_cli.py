"""Dependencies and job arrays as a Slurm user types them, through the real CLI and daemon on a
simulated machine: ``--after`` chains, ``:fail``, a dependency never satisfied, ``--array 0-5%2``
with ``TUXAI_ARRAY_INDEX``, its ``ls`` line, and cancel of one task and of the whole array."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import REPO, DaemonProcess, finish
from tests.e2e.test_doctor_cli import one_line_error
from tests.e2e.test_jobs_cli import cli
from tests.integration.test_identity import as_nobody, root_daemon  # noqa: F401 (a fixture, as nobody)

BIG_BOX = REPO / "examples" / "inventories" / "dgx-a100.yaml"  # room for every task at once: only %N caps them


@pytest.fixture
def big(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon on the simulated DGX (8 GPUs, 256 CPUs): resources never hold a task back."""
    process = DaemonProcess(tmp_path / "home", inventory=BIG_BOX).start()
    try:
        yield process
    finally:
        finish(process)


def submit(home: Path, *args: str) -> int:
    """``tuxai submit --json ARGS``; the job (or array) id."""
    done = cli(home, "submit", "--json", *args)
    assert done.returncode == 0, done.stderr
    job_id: int = json.loads(done.stdout)["id"]
    return job_id


def wait_for(condition: object, timeout_s: float = 30.0) -> None:
    """Poll ``condition()`` until true."""
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_chain_runs_in_order_and_says_what_it_waits_for(big: DaemonProcess) -> None:
    a = submit(big.home, "--name", "a", "--hold", "--", "sleep", "2")
    b = submit(big.home, "--name", "b", "--after", str(a), "--", "true")
    c = submit(big.home, "--name", "c", "--after", f"{b}:ok", "--", "true")
    listed = cli(big.home, "ls").stdout
    assert f"waits for job {a} to end ok (pending)" in listed and f"waits for job {b} to end ok (pending)" in listed
    assert cli(big.home, "release", str(a)).returncode == 0
    wait_for(lambda: big.job(a).state == "running")
    wait_for(lambda: big.job(b).reason == f"waits for job {a} to end ok (running)", timeout_s=1.5)
    jobs = big.wait_all([a, b, c])
    assert {j.state for j in jobs.values()} == {"succeeded"}
    assert jobs[a].ended_at <= jobs[b].started_at <= jobs[b].ended_at <= jobs[c].started_at  # type: ignore[operator]


def test_after_fail_runs_on_a_failure_and_ends_when_the_job_succeeded(big: DaemonProcess) -> None:
    bad = submit(big.home, "--hold", "--", "sh", "-c", "exit 3")
    good = submit(big.home, "--hold", "--", "true")
    cleanup = submit(big.home, "--after", f"{bad}:fail", "--", "true")
    anyway = submit(big.home, "--after", f"{bad}:any", "--after", f"{good}:any", "--", "true")
    never = submit(big.home, "--after", f"{good}:fail", "--", "true")
    assert cli(big.home, "release", str(bad), str(good)).returncode == 0
    jobs = big.wait_all([bad, good, cleanup, anyway, never])
    assert (jobs[cleanup].state, jobs[anyway].state) == ("succeeded", "succeeded")
    assert jobs[never].state == "cancelled"
    assert jobs[never].reason == f"dependency never satisfied: job {good} succeeded"


def test_a_dependency_never_satisfied_ends_its_dependants_with_the_reason(big: DaemonProcess) -> None:
    failing = submit(big.home, "--hold", "--", "sh", "-c", "exit 1")
    after = submit(big.home, "--after", str(failing), "--", "true")
    after_after = submit(big.home, "--after", str(after), "--", "true")
    assert cli(big.home, "release", str(failing)).returncode == 0
    jobs = big.wait_all([failing, after, after_after])
    assert jobs[after].state == jobs[after_after].state == "cancelled"
    assert jobs[after].reason == f"dependency never satisfied: job {failing} failed"
    assert jobs[after_after].reason == f"dependency never satisfied: job {after} was cancelled"
    assert jobs[after].started_at is None
    # Refused at submit: a job that does not exist, one that can no longer end as asked, a bad flag.
    line = one_line_error(cli(big.home, "submit", "--after", "999", "--", "true"))
    assert line.startswith("error: --after 999: no job 999")
    line = one_line_error(cli(big.home, "submit", "--after", str(failing), "--", "true"))
    assert line.startswith(f"error: --after {failing}:ok can never be met: job {failing} failed")
    line = one_line_error(cli(big.home, "submit", "--after", "12:sometimes", "--", "true"))
    assert line.startswith("error: --after '12:sometimes' is not a dependency")
    line = one_line_error(cli(big.home, "submit", "--array", "0-5%0", "--", "true"))
    assert line.startswith("error: --array '0-5%0': the part after % must be a number of tasks")


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end and a start at the same instant do not overlap)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_an_array_of_six_runs_two_at_once_each_with_its_index(big: DaemonProcess, tmp_path: Path) -> None:
    # each task waits for the gate, opened once `tuxai ls` (seconds on a loaded machine) has seen the array
    gate = tmp_path / "gate"
    script = (
        'echo "index $TUXAI_ARRAY_INDEX of $TUXAI_ARRAY_TASK_COUNT in $TUXAI_ARRAY_JOB_ID";'
        f" until [ -e {gate} ]; do sleep 0.05; done"
    )
    done = cli(big.home, "submit", "--name", "sweep", "--array", "0-5%2", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    array = int(done.stdout.split()[2].rstrip(":"))
    assert done.stdout.strip() == f"submitted array {array}: 6 tasks, {array}_0 to {array}_5, at most 2 at once"
    wait_for(lambda: sum(j.state == "running" for j in big.client.array(array)) == 2)
    (line,) = [ln for ln in cli(big.home, "ls").stdout.splitlines() if ln.startswith(f"{array}_[0-5]")]
    assert "sweep" in line and "at most 2 tasks at once (%2)" in line
    assert re.search(r"  2 running, [1-4] pending(, [1-3] done)?; ", line), line  # every task counted
    expanded = cli(big.home, "ls", "--expand", "--all").stdout
    assert all(f"{array}_{i} " in expanded for i in range(6))
    tasks = big.client.array(array)
    ids = [t.id for t in tasks]
    gate.touch()
    big.wait_all(ids)
    for index in range(6):
        log = cli(big.home, "logs", f"{array}_{index}")
        assert log.stdout == f"index {index} of 6 in {array}\n", log.stderr
    ended = big.client.array(array)
    assert {t.state for t in ended} == {"succeeded"} and [t.array_index for t in ended] == list(range(6))
    intervals = [(float(t.started_at), float(t.ended_at)) for t in ended]  # type: ignore[arg-type]
    assert _most_at_once(intervals) == 2  # never more than two, and the box had room for six
    assert "6 done" in cli(big.home, "ls", "--all").stdout
    line = one_line_error(cli(big.home, "logs", str(array)))
    assert f"name one task: tuxai logs {array}_0" in line


def test_cancel_one_task_then_the_whole_array_and_an_array_after_it(big: DaemonProcess) -> None:
    array = submit(big.home, "--array", "1,3,5-7%2", "--grace", "1s", "--", "sleep", "30")
    waiting = submit(big.home, "--after", f"{array}:any", "--array", "0-1", "--", "true")
    wait_for(lambda: sum(j.state == "running" for j in big.client.array(array)) == 2)
    assert "waits for array" in big.job(waiting).reason and "to end (" in big.job(waiting).reason
    assert cli(big.home, "hold", f"{array}_6").stdout.startswith(f"job {array}_6: pending")
    assert big.client.array(array)[3].held  # index 6 is the fourth task
    assert cli(big.home, "release", f"{array}_6").returncode == 0 and not big.client.array(array)[3].held
    done = cli(big.home, "cancel", f"{array}_7")
    assert done.returncode == 0 and done.stdout.strip() == f"job {array}_7: cancelled by root"
    shown = cli(big.home, "show", f"{array}_3")
    assert shown.returncode == 0 and f"{array}_3 sleep" in shown.stdout
    done = cli(big.home, "cancel", str(array))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"array {array}: ") and "cancelling" in done.stdout
    tasks = big.wait_all([t.id for t in big.client.array(array)])
    assert {t.state for t in tasks.values()} == {"cancelled"}
    # `--after ARRAY:any` waited for every task; it runs once all of them ended.
    after = big.wait_all([t.id for t in big.client.array(waiting)])
    assert {t.state for t in after.values()} == {"succeeded"}
    line = one_line_error(cli(big.home, "cancel", str(array)))
    assert line.startswith(f"error: array {array} already ended (5 cancelled)")
    line = one_line_error(cli(big.home, "cancel", f"{array}_2"))
    assert f"no job {array}_2" in line or f"{array}_2" in line


def test_a_thousand_tasks_are_one_quick_submit(big: DaemonProcess) -> None:
    started = time.perf_counter()
    array = big.client.submit({"command": ["true"], "array": "0-999", "hold": True})
    took = time.perf_counter() - started
    assert took < 3.0, f"1000 tasks took {took:.2f} s"  # one transaction (0.1-0.4 s here), not 1000 fsyncs
    tasks = big.client.array(array)
    assert len(tasks) == 1000 and tasks[-1].array_index == 999 and tasks[-1].id == array + 999
    (line,) = [ln for ln in cli(big.home, "ls").stdout.splitlines() if ln.startswith(f"{array}_[0-999]")]
    assert "1000 pending" in line and "held" in line
    done = cli(big.home, "cancel", str(array))
    assert done.returncode == 0 and done.stdout.strip() == f"array {array}: 1000 cancelled"


def test_a_dependency_on_another_users_job_names_only_its_id_and_state(root_daemon: DaemonProcess) -> None:  # noqa: F811
    secret = root_daemon.client.submit({"command": ["sleep", "30"], "name": "secret-name", "grace": "1s"})
    wait_for(lambda: root_daemon.job(secret).state == "running")
    spec = {"command": ["true"], "workdir": "/tmp", "after": [str(secret)]}
    code, answer = as_nobody(root_daemon.home, "POST", "/v1/jobs", {"spec": spec})
    assert code == 201, answer
    theirs = answer["id"]  # type: ignore[index]
    wait_for(lambda: root_daemon.job(theirs).reason.startswith("waits for"))
    code, seen = as_nobody(root_daemon.home, "GET", f"/v1/jobs/{theirs}")
    assert code == 200 and seen["reason"] == f"waits for job {secret} to end ok (running)"  # type: ignore[index]
    array = root_daemon.client.submit({"command": ["true"], "array": "0-2", "hold": True})
    code, refused = as_nobody(root_daemon.home, "POST", f"/v1/arrays/{array}/cancel")
    assert code == 403 and refused["message"] == f"array {array} belongs to root: you cannot cancel it"  # type: ignore[index]
    root_daemon.client.cancel(secret)
    ended = root_daemon.wait_all([theirs])[theirs]
    assert ended.state == "cancelled" and ended.reason == f"dependency never satisfied: job {secret} was cancelled"


def test_under_a_private_queue_another_users_job_is_no_job_to_depend_on(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: a request as another user")
    base = Path(tempfile.mkdtemp(prefix="tuxai-private-"))
    base.chmod(0o755)
    process = DaemonProcess(base / "home", extra=("--private-queue",)).start()
    try:
        secret = process.client.submit({"command": ["true"], "hold": True})
        for target in (str(secret), "999999"):
            spec = {"command": ["true"], "workdir": "/tmp", "after": [target]}
            code, refused = as_nobody(process.home, "POST", "/v1/jobs", {"spec": spec})
            assert code == 400 and refused["message"] == f"--after {target}: no job {target}"  # type: ignore[index]
        assert process.client.submit({"command": ["true"], "after": [str(secret)]}) > secret  # its owner may
    finally:
        finish(process)
        shutil.rmtree(base, ignore_errors=True)
