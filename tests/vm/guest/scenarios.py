"""The VM tier's scenarios, run by run.sh inside the guest, as root, once tuxai.service is started.

Collects facts, judges nothing: tests/vm/test_systemd_cgroup2.py decides on the host. One Python
process drives the daemon through the SDK (every process start costs seconds under TCG); the jobs
(guest/job.py) print their facts as JSON lines. Writes the result to argv[1] and to the console.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tuxai.api.client import Client

HOME = Path("/var/lib/tuxai")
SIGNALS = Path("/run/tuxai-vm")  # the restart job's pid file and the FIFO it waits on
DONE = {"succeeded", "failed", "cancelled", "timeout", "preempted"}
JOB = ["/usr/bin/python3", "/mnt/tuxai-vm/job.py"]  # guest/job.py: its facts as JSON lines
# Blocks on a FIFO until released (no polling: every process start is dear under TCG), exits 7.
RESTART_JOB = f"echo $$ > {SIGNALS}/job.pid; read line < {SIGNALS}/release; exit 7"


def plain(value: Any) -> Any:
    """The SDK's answer as JSON data, whether it returns mappings or typed objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class GiveUp(Exception):
    """Waiting longer cannot help (the service crashed): stop polling."""


def until(what: str, check: Callable[[], Any], timeout_s: float, poll_s: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; raise after ``timeout_s`` (errors but GiveUp: not yet)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 (the daemon restarting: not yet)
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last:
                return last
        time.sleep(poll_s)
    raise TimeoutError(f"{what}: not after {timeout_s:g} s (last: {last!r})")


def health(client: Client) -> dict[str, Any]:
    """The daemon's health, as JSON data."""
    return plain(client.health())


def job(client: Client, job_id: int) -> dict[str, Any]:
    """One job, as JSON data, with its output and the JSON lines it printed."""
    record: dict[str, Any] = plain(client.job(job_id))
    output = client.log(job_id)[0].decode(errors="replace")
    record["output"] = output
    record["printed"] = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return record


def ended(client: Client, job_id: int, timeout_s: float = 180.0) -> dict[str, Any]:
    """The job once it has ended."""
    until(f"job {job_id} to end", lambda: plain(client.job(job_id))["state"] in DONE, timeout_s)
    return job(client, job_id)


def main_pid() -> int:
    """The tuxai service's main pid as systemd knows it."""
    shown = subprocess.run(["systemctl", "show", "-P", "MainPID", "tuxai"], capture_output=True, text=True)
    return int(shown.stdout.strip() or 0)


def service(prop: str) -> str:
    """One property of tuxai.service (``systemctl show -P``)."""
    return subprocess.run(["systemctl", "show", "-P", prop, "tuxai"], capture_output=True, text=True).stdout.strip()


def daemon_up(client: Client, other_than: int | None, restarts_allowed: int) -> dict[str, Any]:
    """The health of a daemon other than pid ``other_than``, once one answers.

    Gives up as soon as systemd has restarted the service more than ``restarts_allowed`` times:
    the daemon dies while starting, and the error carries its journal.
    """

    def check() -> dict[str, Any] | None:
        if int(service("NRestarts") or 0) > restarts_allowed:
            journal = subprocess.run(["journalctl", "-u", "tuxai", "-n", "25", "--no-pager"], capture_output=True)
            raise GiveUp(
                f"tuxai.service keeps failing to start; its journal:\n{journal.stdout.decode(errors='replace')}"
            )
        answer = health(client)
        return answer if answer["pid"] != other_than else None

    return until("the tuxai service to answer", check, 240, poll_s=1)


def restarts(client: Client, job_id: int) -> dict[str, Any]:
    """systemctl restart, then kill -9 of the main pid (Restart=on-failure): the job runs on and ends recorded."""
    job_pid = until("the restart job's pid", lambda: int((SIGNALS / "job.pid").read_text() or 0), 60)
    facts: dict[str, Any] = {"job_pid": job_pid}
    for step, act in (
        ("systemctl_restart", lambda: subprocess.run(["systemctl", "restart", "tuxai"], check=True, timeout=120)),
        ("kill_9", lambda: os.kill(main_pid(), signal.SIGKILL)),
    ):
        before = health(client)["pid"]
        allowed = int(service("NRestarts") or 0) + (step == "kill_9")
        started = time.monotonic()
        act()
        after = daemon_up(client, before, allowed)
        facts[step] = {
            "daemon_pid_before": before,
            "daemon_pid_after": after["pid"],
            "main_pid_after": main_pid(),
            "back_after_s": round(time.monotonic() - started, 1),
            "job_process_alive": Path(f"/proc/{job_pid}").exists(),
            "job_state": plain(client.job(job_id))["state"],
            "n_restarts": service("NRestarts"),
        }
    release = os.open(SIGNALS / "release", os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: the job is not waiting
    os.write(release, b"go\n")
    os.close(release)
    facts["job"] = ended(client, job_id, 120)
    return facts


def doctor() -> subprocess.Popen[str]:
    """``tuxai doctor --json``, started now, read at the end (it runs beside the jobs)."""
    argv = ["/usr/local/bin/tuxai", "doctor", "--json", "--no-frameworks"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def guarded(results: dict[str, Any], name: str, action: Callable[[], Any]) -> None:
    """Record a scenario's facts, or its traceback: one failing scenario does not stop the others."""
    started = time.monotonic()
    try:
        results[name] = action()
    except Exception:  # noqa: BLE001 (whatever went wrong is a fact for the host's test)
        results[name] = {"error": traceback.format_exc()}
    print(f"tuxai-vm: scenario {name}: {time.monotonic() - started:.1f} s", flush=True)


def main(out: Path) -> int:
    """Run every scenario against the tuxai service; write the facts to ``out``."""
    started = time.monotonic()
    SIGNALS.mkdir(exist_ok=True)
    os.mkfifo(SIGNALS / "release")
    result: dict[str, Any] = {"scenarios": {}}
    scenarios = result["scenarios"]
    probe = doctor()
    with Client.for_home(HOME, timeout_s=60) as client:
        result["health"] = daemon_up(client, None, 0)
        result["daemon_up_s"] = round(time.monotonic() - started, 1)
        result["service"] = {p: service(p) for p in ("MainPID", "ControlGroup", "KillMode", "Delegate", "Restart")}
        result["daemon_cgroup"] = Path(f"/proc/{result['health']['pid']}/cgroup").read_text().strip()
        spec = {"time": "5m", "grace": "5s", "workdir": "/"}
        ids = {
            "restart": client.submit({**spec, "name": "restart", "command": ["sh", "-c", RESTART_JOB]}),
            "memory": client.submit({**spec, "name": "memory", "mem": "64MiB", "command": [*JOB, "memory"]}),
            "cpu_set": client.submit({**spec, "name": "cpu-set", "cpus": 1, "command": [*JOB, "cpu-set"]}),
            "gpu_device": client.submit({**spec, "name": "gpu-device", "gpus": 1, "command": [*JOB, "gpu-device"]}),
        }
        for name in ("memory", "cpu_set", "gpu_device"):
            guarded(scenarios, name, lambda name=name: {"job": ended(client, ids[name])})
        guarded(scenarios, "restart", lambda: restarts(client, ids["restart"]))
    try:
        stdout, stderr = probe.communicate(timeout=180)
        scenarios["doctor"] = {"exit_status": probe.returncode, "report": json.loads(stdout), "stderr": stderr}
    except Exception:  # noqa: BLE001 (as in guarded)
        scenarios["doctor"] = {"error": traceback.format_exc()}
    result["scenarios_s"] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(result, indent=1))
    print(f"tuxai-vm: result {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
