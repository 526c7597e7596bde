"""The conventions users bring, through the real CLI: help people read, Slurm's ``--time``,
``--gpus 0.5``, ``tuxai down`` with no daemon, ``logs --tail``/``-f`` of a pending job."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer.main

from tests.daemon_helpers import REPO, TWO_GPUS, DaemonProcess
from tests.e2e.test_doctor_cli import one_line_error
from tests.e2e.test_jobs_cli import cli
from tuxai.cli.main import app

PYTHON_TYPES = re.compile(r"\b(INTEGER|TEXT|FLOAT|PATH|BOOLEAN)\b|<(int|str|float|bool|path|list\[[^>]*\])>")


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the tree, as the words that reach it."""
    found = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        found += _paths(sub, (*prefix, name))
    return found


def _help(words: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    env = {**os.environ, "COLUMNS": "200"}
    argv = [sys.executable, "-m", "tuxai", *words, "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return words, done.stdout


def test_every_commands_help_names_values_as_people_do() -> None:
    paths = _paths(typer.main.get_command(app))
    assert ("submit",) in paths and ("env", "create") in paths and len(paths) > 15
    with ThreadPoolExecutor(4) as pool:
        helps = dict(pool.map(_help, paths))
    python_types = {" ".join(words): PYTHON_TYPES.findall(text) for words, text in helps.items()}
    assert {words: found for words, found in python_types.items() if found} == {}
    submit = helps[("submit",)]
    for shown in ("--gpus", "-g", "N"), ("--export", "-e", "VAR=VALUE"), ("--time", "-t", "DURATION"):
        assert re.search(r"\s+".join(re.escape(word) for word in shown), submit), shown
    assert re.search(r"--home\s+DIR", submit)
    assert "a bare number is minutes, as in Slurm (seconds need s)" in submit


def test_a_bare_time_is_minutes_and_slurm_forms_work(daemon: DaemonProcess, tmp_path: Path) -> None:
    ids = {}
    for text, seconds in (("90", 5400.0), ("90s", 90.0), ("1-12:00:00", 129600.0), ("2:30", 150.0)):
        done = cli(daemon.home, "submit", "--json", "--hold", "--time", text, "--", "true")
        assert done.returncode == 0, done.stderr
        ids[json.loads(done.stdout)["id"]] = seconds
    job_file = tmp_path / "job.yaml"
    job_file.write_text("command: 'true'\ntime: 45\nhold: true\n")  # a job file's bare number: minutes too
    done = cli(daemon.home, "submit", "--json", "--file", str(job_file))
    assert done.returncode == 0, done.stderr
    ids[json.loads(done.stdout)["id"]] = 2700.0
    for job_id, seconds in ids.items():
        assert daemon.job(job_id).spec.time_limit_s == seconds
    assert "time limit 1h30m" in cli(daemon.home, "show", str(next(iter(ids)))).stdout
    line = one_line_error(cli(daemon.home, "submit", "--time", "soon", "--", "true"))
    assert "time must be a duration such as 90 (minutes), 90s" in line


def test_a_fraction_of_gpus_points_to_gpu_share(daemon: DaemonProcess) -> None:
    line = one_line_error(cli(daemon.home, "submit", "--gpus", "0.5", "--", "true"))
    hint = "(a slice of one GPU is --gpu-share 0.5, or gpu_share: 0.5 in a job file)"
    assert line == f"error: submit: gpus counts whole GPUs, got '0.5' {hint}"
    assert daemon.client.jobs() == []


def test_down_with_no_daemon_exits_0_and_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = cli(home, "down")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"no tuxai daemon runs for {home}: nothing to stop\n"


def test_logs_tail_n(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit({"command": ["sh", "-c", "for i in 1 2 3 4 5 6; do echo line $i; done; printf end"]})
    daemon.wait_all([job_id])
    assert cli(daemon.home, "logs", str(job_id), "--tail", "3").stdout == "line 5\nline 6\nend"
    assert cli(daemon.home, "logs", "-n", "1", str(job_id)).stdout == "end"
    assert cli(daemon.home, "logs", str(job_id), "--tail", "0").stdout == ""
    assert cli(daemon.home, "logs", str(job_id), "--tail", "99").stdout.startswith("line 1\n")
    assert cli(daemon.home, "logs", "-f", "--tail", "2", str(job_id)).stdout == "line 6\nend"  # ended: no wait
    assert "--tail must be 0 or more" in one_line_error(cli(daemon.home, "logs", str(job_id), "--tail", "-1"))


def test_logs_of_a_pending_job_say_it_waits_and_follow_once_it_starts(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit({"command": ["sh", "-c", "echo started; echo done"], "hold": True})
    once = cli(daemon.home, "logs", str(job_id))
    assert once.returncode == 0 and once.stdout == ""
    reason = daemon.job(job_id).reason
    assert reason.startswith("held") and once.stderr == f"job {job_id} has not started: it is pending, {reason}\n"
    env = {**os.environ, "TUXAI_HOME": str(daemon.home)}
    argv = [sys.executable, "-m", "tuxai", "logs", "-f", str(job_id)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as follow:
        assert follow.stderr is not None
        said = follow.stderr.readline()  # before the job starts: it is waiting, and why
        assert said == f"job {job_id} is pending, {reason}; its output follows once it starts\n"
        assert follow.poll() is None
        daemon.client.release(job_id)
        out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err
    assert out == "started\ndone\n"  # stdout is the job's output only
    assert f"job {job_id} " in err and "following its output" in err


def test_a_job_cancelled_while_pending_stops_counting_waited(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit({"command": ["true"], "hold": True})
    done = cli(daemon.home, "cancel", str(job_id))
    assert done.returncode == 0 and done.stdout == f"job {job_id}: cancelled by root\n"
    first = daemon.job(job_id)
    time.sleep(1.1)
    (listed,) = [j for j in json.loads(cli(daemon.home, "ls", "--all", "--json").stdout) if j["id"] == job_id]
    assert listed["ended_at"] is not None and listed["started_at"] is None
    assert listed["waited_s"] == first.waited_s == pytest.approx(listed["ended_at"] - listed["submitted_at"])
    assert "state  cancelled by root\n" in cli(daemon.home, "show", str(job_id)).stdout


def test_a_running_job_asked_to_stop_reads_cancelling(daemon: DaemonProcess) -> None:
    # TERM ignored (and inherited by sleep): the job lingers for its grace, cancelling.
    job_id = daemon.client.submit({"command": ["sh", "-c", "trap '' TERM; sleep 30"], "grace": "10s"})
    deadline = time.monotonic() + 20
    while daemon.job(job_id).state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    done = cli(daemon.home, "cancel", str(job_id))
    assert done.returncode == 0 and done.stdout == f"job {job_id}: cancelling (by root)\n"
    assert "state  cancelling (by root)\n" in cli(daemon.home, "show", str(job_id)).stdout
    (row,) = [line for line in cli(daemon.home, "ls").stdout.splitlines() if line.split()[:1] == [str(job_id)]]
    assert " cancelling " in row and " running " not in row
    assert daemon.wait_all([job_id], timeout_s=30)[job_id].state == "cancelled"


def test_submit_and_ls_say_the_inventory_is_simulated(daemon: DaemonProcess) -> None:
    note = f"simulated inventory: {TWO_GPUS} — jobs see fake GPUs"
    done = cli(daemon.home, "submit", "--json", "--hold", "--", "true")
    assert done.returncode == 0 and done.stderr == f"note: {note}\n"
    assert json.loads(done.stdout)["id"] > 0  # stdout stays the JSON scripts read
    assert cli(daemon.home, "ls").stdout.splitlines()[0] == note
    assert note not in cli(daemon.home, "ls", "--json").stdout


def test_up_says_it_could_not_bind_the_metrics_port_and_how_to_stop_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    taken = socket.socket()
    with contextlib.suppress(OSError):  # already taken by another daemon: the same case
        taken.bind(("127.0.0.1", 9465))  # DEFAULT_METRICS_ADDR
        taken.listen()
    try:
        env = {**os.environ, "COLUMNS": "200"}
        env.pop("TUXAI_METRICS_ADDR", None)
        argv = [sys.executable, "-m", "tuxai", "up", "--detach", "--home", str(home), "--inventory", str(TWO_GPUS)]
        up = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
        assert up.returncode == 0, up.stderr
        assert "  prometheus: not on TCP: cannot listen on 127.0.0.1:9465" in up.stdout
        assert f"  simulated inventory: {TWO_GPUS} — jobs see fake GPUs" in up.stdout
        assert f"stop it: tuxai down --home {home}" in up.stdout
    finally:
        taken.close()
        down = cli(home, "down")
    assert down.returncode == 0 and "stopped" in down.stdout


def test_the_demo_daemon_has_a_home_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: Any) -> None:
    found = importlib.util.spec_from_file_location("demo", REPO / "examples" / "demo.py")
    assert found is not None and found.loader is not None
    demo = importlib.util.module_from_spec(found)
    found.loader.exec_module(demo)
    assert demo.DEMO_HOME == REPO / "build" / "demo-home"  # build/: ignored by git
    assert "examples/demo.py --home $(DEMO_HOME)" in (REPO / "Makefile").read_text()
    user = tmp_path / "user-home"  # where the person's own `tuxai submit` goes
    monkeypatch.setenv("TUXAI_HOME", str(user))
    home = tmp_path / "demo-home"
    try:
        demo.start(home)
        out = capfd.readouterr().out
        assert f"tuxai up --detach --home {home} --inventory" in out  # echoed as a person types it
        assert f"stop it: tuxai down --home {home}" in out and "jobs see fake GPUs" in out
        assert "not running" in one_line_error(cli(user, "submit", "--", "true"))  # the demo is not there
        demo.start(home)
        assert f"the demo's tuxai daemon is already up (home {home})" in capfd.readouterr().out
    finally:
        down = cli(home, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
