"""Quotas, the whole queue and "why, with numbers", through the real CLI and a real daemon: a user at
their GPU cap waits with the cap in the reason while another user's job starts; max_time and
max_pending are refused at submit in one line; ``ls --user/--name/--limit/--mine``; ``show --json``
carries the scheduler's priority terms, which add up to the total, and ``ls --explain``'s order is
the order jobs start in. A second user is ``nobody`` (uid 65534), as in tests/integration/test_identity.py.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, finish
from tests.e2e.test_doctor_cli import one_line_error
from tests.e2e.test_jobs_cli import cli
from tests.integration.test_identity import as_nobody
from tuxai.model.job import JobState


@contextlib.contextmanager
def _daemon(limits: str) -> Iterator[DaemonProcess]:
    """A daemon whose config file has ``limits``, in a home ``nobody`` can reach."""
    base = Path(tempfile.mkdtemp(prefix="tuxai-quotas-"))
    base.chmod(0o755)
    config = base / "config.yaml"
    config.write_text(limits)
    process = DaemonProcess(base / "home", extra=("--config", str(config))).start()
    try:
        yield process
    finally:
        finish(process)
        shutil.rmtree(base, ignore_errors=True)


def _needs_root() -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: a second user (nobody) submits to the daemon")


def _wait(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _submit(home: Path, *args: str) -> int:
    done = cli(home, "submit", "--json", *args)
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["id"])


def _row(table: str, job_id: int) -> str:
    (line,) = [line for line in table.splitlines() if line.split()[:1] == [str(job_id)]]
    return line


@pytest.fixture
def capped() -> Iterator[DaemonProcess]:
    """root may hold 1 GPU at once; nobody has no cap."""
    _needs_root()
    with _daemon("limits:\n  users:\n    root: {max_gpus: 1}\n") as daemon:
        yield daemon


def test_a_user_at_their_gpu_cap_waits_with_the_cap_while_another_users_job_starts(capped: DaemonProcess) -> None:
    home = capped.home
    first = _submit(home, "--gpus", "1", "--grace", "1s", "--", "sleep", "60")
    second = _submit(home, "--gpus", "1", "--grace", "1s", "--name", "capped", "--", "sleep", "60")
    reason = "user limit: root holds 1 of 1 GPUs, this job asks 1 (limits.users.root.max_gpus)"
    _wait(lambda: capped.job(second).reason == reason)
    spec = {"command": ["sleep", "60"], "gpus": 1, "grace": "1s", "workdir": "/tmp"}
    code, answer = as_nobody(home, "POST", "/v1/jobs", {"spec": spec})
    assert code == 201, answer
    theirs = int(answer["id"])  # type: ignore[index]
    _wait(lambda: capped.client.job(theirs).state == JobState.RUNNING)  # the box's second GPU: not root's to take
    table = cli(home, "ls").stdout
    assert "running" in _row(table, first) and "running" in _row(table, theirs) and "nobody" in _row(table, theirs)
    assert "pending" in _row(table, second) and reason in _row(table, second)
    status = cli(home, "status").stdout
    assert "limits  root: 1 of 1 GPUs held (limits.users.root.max_gpus)" in status
    assert "nobody: 1 GPUs held (no cap)" in status  # root sees every account
    code, limits = as_nobody(home, "GET", "/v1/limits")
    assert code == 200 and [a["who"] for a in limits["accounts"]] == ["nobody"]  # type: ignore[index]
    assert cli(home, "cancel", str(first), str(second), str(theirs)).returncode == 0


def test_max_time_and_max_pending_are_refused_at_submit_in_one_line() -> None:
    with _daemon("limits:\n  default: {max_time: 1h, max_pending: 2}\n") as daemon:
        home = daemon.home
        line = one_line_error(cli(home, "submit", "--time", "2h", "--", "true"))
        assert line == (
            "error: time limit 2h exceeds your limit of 1h (limits.default.max_time)"
            " (ask root, or submit with --time 1h)"
        )
        untimed = _submit(home, "--hold", "--", "true")  # no --time under a max_time: it gets the cap
        assert daemon.job(untimed).spec.time_limit_s == 3600
        _submit(home, "--hold", "--time", "30m", "--", "true")
        line = one_line_error(cli(home, "submit", "--", "true"))
        assert "you have 2 jobs waiting, the limit is 2 (limits.default.max_pending)" in line
        assert len(daemon.client.jobs()) == 2  # the store is as it was


def test_ls_selects_by_user_name_limit_and_mine(capped: DaemonProcess) -> None:
    home = capped.home
    ids = [_submit(home, "--hold", "--name", name, "--", "true") for name in ("train-a", "train-b", "eval")]
    code, answer = as_nobody(home, "POST", "/v1/jobs", {"spec": {"command": ["true"], "name": "nb", "hold": True}})
    assert code == 201, answer
    theirs = int(answer["id"])  # type: ignore[index]

    def listed(*args: str) -> list[int]:
        done = cli(home, "ls", "--json", *args)
        assert done.returncode == 0, done.stderr
        return [job["id"] for job in json.loads(done.stdout)]

    assert listed() == [*ids, theirs]
    assert listed("--user", "nobody") == [theirs]
    assert listed("--mine") == ids
    assert listed("--name", "train-*") == ids[:2]
    assert listed("--limit", "2") == ids[:2]
    assert listed("--name", "train-*", "--limit", "1") == ids[:1]
    table = cli(home, "ls", "--user", "nobody").stdout
    assert str(theirs) in table and "train-a" not in table
    assert cli(home, "ls", "--mine", "--name", "nothing-*").stdout.strip().endswith("(--all shows finished ones)")
    assert (
        one_line_error(cli(home, "ls", "--limit", "-1"))
        == "error: --limit -1: a number of jobs, 0 or more (e.g. --limit 20)"
    )


def test_show_json_terms_add_up_and_explain_order_is_the_start_order(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        home = daemon.home
        blocker = daemon.client.submit({"command": ["sleep", "60"], "gpus": 2, "time": "10m", "grace": "1s"})
        _wait(lambda: daemon.job(blocker).state == JobState.RUNNING)
        queued = {
            prio: daemon.client.submit({"command": ["sleep", "0.2"], "gpus": 2, "time": "5m", "priority": prio})
            for prio in (10, 50, 30, 0)
        }
        _wait(lambda: all(daemon.job(i).standing is not None for i in queued.values()))

        explained = json.loads(cli(home, "ls", "--explain", "--json").stdout)
        order = [job["id"] for job in explained]
        assert order == [queued[50], queued[30], queued[10], queued[0]]  # the job priority decides here
        lines = cli(home, "ls", "--explain").stdout.splitlines()
        table = lines[next(i for i, line in enumerate(lines) if line.startswith("RANK")) :]  # after the header
        assert table[0].split()[:2] == ["RANK", "ID"] and "TOTAL" in table[0] and "REASON" in table[0]
        assert [int(line.split()[1]) for line in table[1:5]] == order
        assert [int(line.split()[0]) for line in table[1:5]] == [1, 2, 3, 4]

        for job_id in (order[0], order[-1]):
            shown = json.loads(cli(home, "show", str(job_id), "--json").stdout)
            standing = shown["standing"]
            assert [t["name"] for t in standing["terms"]] == ["priority", "fairshare", "age", "size", "short"]
            assert all(t["value"] == pytest.approx(t["factor"] * t["weight"]) for t in standing["terms"])
            assert sum(t["value"] for t in standing["terms"]) == pytest.approx(standing["total"], abs=1e-9)
        head = daemon.job(order[0])
        assert head.standing is not None and head.standing.expected_start is not None  # its reservation
        assert head.standing.expected_start == pytest.approx(daemon.job(blocker).started_at + 600, abs=5)
        text = cli(home, "show", str(order[0])).stdout
        assert "priority  " in text and "= job priority 500.0 (0.500 × 1000)" in text and "rank  1 in the queue" in text

        daemon.client.cancel(blocker)
        ended = daemon.wait_all(list(queued.values()))
        started = sorted(ended.values(), key=lambda job: job.started_at or 0)
        assert [job.id for job in started] == order
    finally:
        finish(daemon)


def test_Q1_another_users_io_counters_and_log_size_stay_private_in_telemetry(capped: DaemonProcess) -> None:
    # /proc/PID/io is its owner's (mode 0400) and the log is the owner's: /v1/telemetry must not tell others.
    home = capped.home
    mine = capped.client.submit({"command": ["sh", "-c", "echo secret; sleep 60"], "grace": "1s"})
    _wait(lambda: mine in (usage := capped.client.telemetry().usage) and usage[mine].log_bytes)
    own = capped.client.telemetry().usage[mine]
    assert own.log_bytes == len("secret\n") and own.read_bytes is not None  # the owner (root) sees them
    code, live = as_nobody(home, "GET", "/v1/telemetry")
    assert code == 200, live
    theirs = live["usage"][str(mine)]  # type: ignore[index]
    assert theirs["cpu_s"] is not None and theirs["memory_bytes"] is not None  # what ps and top show anyone
    assert (theirs["read_bytes"], theirs["write_bytes"], theirs["log_bytes"]) == (None, None, None)
    capped.client.cancel(mine)


def test_Q2_a_start_failure_does_not_tell_others_the_command(capped: DaemonProcess) -> None:
    # A job's reason is public (the queue is), but "cannot start '/opt/hunter2/run': …" names its command.
    home = capped.home
    mine = capped.client.submit({"command": ["/nonexistent/hunter2/run"], "workdir": "/tmp"})
    _wait(lambda: capped.job(mine).state == JobState.FAILED)
    assert "hunter2" in capped.job(mine).reason  # the owner (root) reads why
    code, listed = as_nobody(home, "GET", "/v1/jobs")
    (theirs,) = [job for job in listed if job["id"] == mine]  # type: ignore[union-attr]
    assert code == 200 and theirs["state"] == "failed" and "hunter2" not in theirs["reason"]
    assert theirs["reason"] == "cannot start its command (its owner sees why in `tuxai show`)"
    code, shown = as_nobody(home, "GET", f"/v1/jobs/{mine}")
    assert code == 200 and "hunter2" not in str(shown)


def test_a_group_cap_holds_its_members_together(tmp_path: Path) -> None:
    # nobody's jobs carry its group (gid 65534, from SO_PEERCRED); the group may hold 1 GPU in all.
    _needs_root()
    group = grp.getgrgid(65534).gr_name
    with _daemon(f"limits:\n  groups:\n    {group}: {{max_gpus: 1}}\n") as daemon:
        spec = {"command": ["sleep", "60"], "gpus": 1, "grace": "1s", "workdir": "/tmp"}
        ids = [int(as_nobody(daemon.home, "POST", "/v1/jobs", {"spec": spec})[1]["id"]) for _ in range(2)]  # type: ignore[index]
        reason = f"group limit: group {group} hold 1 of 1 GPUs, this job asks 1 (limits.groups.{group}.max_gpus)"
        _wait(lambda: daemon.client.job(ids[1]).reason == reason)
        assert daemon.client.job(ids[0]).state == JobState.RUNNING
        mine = _submit(daemon.home, "--gpus", "1", "--grace", "1s", "--", "sleep", "60")  # root is not in it
        _wait(lambda: daemon.job(mine).state == JobState.RUNNING)
        assert f"group {group}: 1 of 1 GPUs held (limits.groups.{group}.max_gpus)" in cli(daemon.home, "status").stdout
        assert cli(daemon.home, "cancel", str(mine), *(str(i) for i in ids)).returncode == 0


def test_sighup_reloads_the_limits_and_a_bad_file_keeps_the_old_ones(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("limits:\n  default: {max_gpus: 1}\n")
    daemon = DaemonProcess(tmp_path / "home", extra=("--config", str(config))).start()
    try:
        assert daemon.process is not None
        ids = [daemon.client.submit({"command": ["sleep", "60"], "gpus": 1, "grace": "1s"}) for _ in range(2)]
        _wait(lambda: "limits.default.max_gpus" in daemon.job(ids[1]).reason)
        config.write_text("limits:\n  default: {max_gpus: many}\n")
        daemon.process.send_signal(signal.SIGHUP)
        _wait(lambda: "limits not reloaded" in (daemon.home / "daemon.log").read_text())
        assert "limits.default.max_gpus must be a number" in (daemon.home / "daemon.log").read_text()
        assert daemon.client.health().ok and daemon.job(ids[1]).state == JobState.PENDING  # the old cap holds
        config.write_text("limits:\n  default: {max_gpus: 2}\n")
        daemon.process.send_signal(signal.SIGHUP)  # as `systemctl reload tuxai` does
        _wait(lambda: daemon.job(ids[1]).state == JobState.RUNNING)
        assert "2 of 2 GPUs held (limits.default.max_gpus)" in cli(daemon.home, "status").stdout
        for job_id in ids:
            daemon.client.cancel(job_id)
    finally:
        finish(daemon)
