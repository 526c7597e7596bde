"""The job commands as a user types them, against a real daemon: output, JSON shapes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon_helpers import TWO_GPUS, DaemonProcess, finish
from tests.e2e.test_doctor_cli import one_line_error

JOB_KEYS = {"id", "name", "user", "state", "exit_code", "gpus", "reason", "submitted_at", "started_at", "ended_at"}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``tuxai ARGS`` with ``TUXAI_HOME=HOME`` in a child process."""
    env = {**os.environ, "COLUMNS": "200", "TUXAI_HOME": str(home)}
    argv = [sys.executable, "-m", "tuxai", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_submit_ls_show_logs_json_shapes(daemon: DaemonProcess, tmp_path: Path) -> None:
    done = cli(daemon.home, "submit", "--json", "--gpus", "1", "--name", "hello", "--", "sh", "-c", "echo hi from $PWD")
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]
    daemon.wait_all([job_id])

    listed = json.loads(cli(daemon.home, "ls", "--all", "--json").stdout)
    (job,) = [j for j in listed if j["id"] == job_id]
    assert JOB_KEYS | {"log_path"} <= set(job)
    assert job["state"] == "succeeded" and job["exit_code"] == 0 and job["name"] == "hello"
    assert len(job["gpus"]) == 1 and job["gpus"][0].startswith("GPU-")
    assert job["submitted_at"] <= job["started_at"] <= job["ended_at"]

    shown = json.loads(cli(daemon.home, "show", str(job_id), "--json").stdout)
    assert shown["id"] == job_id and [e["to_state"] for e in shown["events"]] == ["pending", "running", "succeeded"]
    assert cli(daemon.home, "logs", str(job_id)).stdout == f"hi from {Path.cwd()}\n"  # the submitter's directory
    table = cli(daemon.home, "ls", "--all").stdout
    assert "hello" in table and "succeeded" in table


def test_job_file_with_flags_over_it(daemon: DaemonProcess, tmp_path: Path) -> None:
    job_file = tmp_path / "job.yaml"
    job_file.write_text("name: from-file\ncommand: sh -c 'echo $GREETING'\nexport: {GREETING: hello}\ntime: 1m\n")
    done = cli(daemon.home, "submit", "--json", "--file", str(job_file), "--export", "GREETING=bonjour")
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]
    job = daemon.wait_all([job_id])[job_id]
    assert job.name == "from-file" and daemon.log(job_id) == "bonjour\n"


def test_follow_logs_until_the_job_ends(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit({"command": ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done"]})
    done = cli(daemon.home, "logs", "-f", str(job_id))
    assert done.returncode == 0 and done.stdout == "line 1\nline 2\nline 3\n"


def test_cancel_several_and_gpus_view(daemon: DaemonProcess) -> None:
    ids = [daemon.client.submit({"command": ["sleep", "30"], "gpus": 1, "grace": "1s"}) for _ in range(2)]
    deadline = time.monotonic() + 10
    while any(daemon.job(i).state != "running" for i in ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    gpus = json.loads(cli(daemon.home, "gpus", "--json").stdout)
    held = {h["job"] for g in gpus for h in g["holders"]}
    assert held == set(ids) and len(gpus) == 2
    assert "job " in cli(daemon.home, "gpus").stdout
    done = cli(daemon.home, "cancel", *(str(i) for i in ids))
    assert done.returncode == 0, done.stderr
    assert {j.state for j in daemon.wait_all(ids).values()} == {"cancelled"}


def test_errors_are_one_line_and_leave_the_store_intact(daemon: DaemonProcess, tmp_path: Path) -> None:
    keep = daemon.client.submit({"command": ["true"]})
    daemon.wait_all([keep])
    line = one_line_error(cli(daemon.home, "submit", "--gpus", "9", "--", "true"))
    assert "impossible request" in line and "2 × NVIDIA L4" in line
    bad = tmp_path / "bad.yaml"
    bad.write_text("command: train.py\ngpus: two\n")
    assert "gpus must be an integer" in one_line_error(cli(daemon.home, "submit", "--file", str(bad)))
    bad.write_text("command: [python\n")
    assert "is not valid YAML" in one_line_error(cli(daemon.home, "submit", "--file", str(bad)))
    bad.write_text("comand: true\n")
    assert "unknown field comand" in one_line_error(cli(daemon.home, "submit", "--file", str(bad)))
    assert "time must be a duration" in one_line_error(cli(daemon.home, "submit", "--time", "soon", "--", "true"))
    assert "no command to run" in one_line_error(cli(daemon.home, "submit", "--gpus", "1"))
    assert "no job 4242" in one_line_error(cli(daemon.home, "show", "4242"))
    assert "already ended" in one_line_error(cli(daemon.home, "cancel", str(keep)))
    assert "does not exist" in one_line_error(cli(daemon.home, "submit", "--workdir", "/nonexistent", "--", "true"))
    # Nothing of that reached the store: the one good job is still the only one.
    assert [j.id for j in daemon.client.jobs()] == [keep]


def test_daemon_not_running_says_how_to_start_it(tmp_path: Path) -> None:
    line = one_line_error(cli(tmp_path / "nowhere", "ls"))
    assert "daemon is not running" in line and "tuxai up" in line


def test_up_detach_then_down_and_a_second_up_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = cli(home, "up", "--detach", "--inventory", str(TWO_GPUS))
    assert up.returncode == 0, up.stderr
    assert "tuxai ls" in up.stdout and "tuxai down" in up.stdout
    try:
        again = one_line_error(cli(home, "up", "--detach", "--inventory", str(TWO_GPUS)))
        assert "already runs" in again
        assert json.loads(cli(home, "ls", "--json").stdout) == []
    finally:
        down = cli(home, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert "not running" in one_line_error(cli(home, "ls"))
    assert "does not exist" in one_line_error(cli(home, "up", "--inventory", str(tmp_path / "missing.yaml")))


def test_ls_filters_by_state(daemon: DaemonProcess) -> None:
    done = daemon.client.submit({"command": ["true"]})
    held = daemon.client.submit({"command": ["true"], "hold": True})
    daemon.wait_all([done])
    assert [j["id"] for j in json.loads(cli(daemon.home, "ls", "--json").stdout)] == [held]
    assert [j["id"] for j in json.loads(cli(daemon.home, "ls", "--state", "succeeded", "--json").stdout)] == [done]
    assert "unknown state" in one_line_error(cli(daemon.home, "ls", "--state", "sleeping"))


# ---- the JSON scripts read (docs/jobs.md "JSON for scripts"): its keys are pinned ----------------------

PUBLIC_KEYS = {
    *("id", "name", "user", "state", "reason", "exit_code", "signal", "held", "priority", "flags", "gpus"),
    *("gpu_indices", "cpus", "node", "submitted_at", "started_at", "ended_at", "waited_s", "ran_s"),
    "standing",  # the scheduler's priority terms (docs/jobs.md, "Reading the queue")
    *("array_job", "array_index"),  # a task of an array: 12_3 (docs/jobs.md, "Dependencies and arrays")
    "ranks",  # a Slurm job's nodes and GPUs per rank: n1:0,1 n2:0,1 (docs/slurm.md)
}
OWN_KEYS = PUBLIC_KEYS | {
    *("log_path", "command", "attempt", "failures", "requeues", "wall_s", "cpu_s", "max_rss_bytes"),
    *("oom_killed", "endpoint", "spec"),
    "rank_exits",  # a gang's ranks' ends, rank order (docs/cluster.md); the owner's only
}
HEALTH_KEYS = [
    *("ok", "pid", "version", "home", "inventory", "gpus", "cpus", "cgroups", "cgroups_path", "cgroups_problem"),
    *("ticks", "last_tick_age_s", "tick_errors", "metrics", "sampler", "cpu_energy", "cpu_energy_problem"),
    *("telemetry_steps", "telemetry_cpu_s", "telemetry_errors", "engine"),
]
ENERGY_KEYS = {
    "gpu_kwh",
    "cpu_kwh",
    "total_kwh",
    "co2e_kg",
    "gpu_hours",
    "grid_g_per_kwh",
    "pue",
    "methods",
    "gpu_util_mean_pct",
    "gpu_memory_peak_bytes",
}


def test_json_outputs_keep_their_keys(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home", extra=("--telemetry-period", "0.2")).start()
    try:
        argv = ["submit", "--json", "-g", "1", "-n", "pinned", "-t", "1h", "--mem", "1GiB", "--priority", "5"]
        argv += ["--retries", "2", "-e", "A=1", "--gpu-type", "L4", "--preemptible", "-w", "/tmp", "--"]
        submitted = json.loads(cli(daemon.home, *argv, "sleep", "30").stdout)
        assert list(submitted) == ["id"]
        job_id = submitted["id"]
        deadline = time.monotonic() + 30
        while (daemon.job(job_id).state, daemon.job(job_id).energy) == ("running", None) or (
            daemon.job(job_id).state == "pending"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        (listed,) = json.loads(cli(daemon.home, "ls", "--json").stdout)
        assert set(listed) == OWN_KEYS and listed["state"] == "running" and listed["endpoint"] is None
        assert listed["spec"] == {
            **{"name": "pinned", "command": ["sleep", "30"], "gpus": 1, "cpus": 1, "grace": 60.0, "priority": 5},
            **{"retries": 2, "retry_backoff": 5.0, "requeue": True, "preemptible": True, "hold": False},
            **{"gpu_type": "L4", "mem": 2**30, "time": 3600.0, "workdir": "/tmp", "export": {"A": "1"}},
        }
        shown = json.loads(cli(daemon.home, "show", str(job_id), "--json").stdout)
        assert set(shown) == OWN_KEYS | {"events", "energy"} and set(shown["energy"]) == ENERGY_KEYS
        assert [set(e) for e in shown["events"]] == [{"at", "from_state", "to_state", "reason"}] * 2
        assert shown["events"][0]["from_state"] is None and shown["events"][1]["to_state"] == "running"
        (gpu, _) = json.loads(cli(daemon.home, "gpus", "--json").stdout)
        assert set(gpu) == {"index", "uuid", "name", "memory_total_bytes", "mig", "holders", "mig_instances", "outside"}
        holder = {"job": job_id, "user": "root", "name": "pinned", "share": 1.0, "mig": None, "memory_bytes": None}
        assert gpu["holders"] == [holder]
        assert list(json.loads(cli(daemon.home, "status", "--json").stdout)) == HEALTH_KEYS
        assert cli(daemon.home, "cancel", str(job_id)).returncode == 0
    finally:
        finish(daemon)
