"""Review of the second wave (sessions, arrays and dependencies, quotas, envs) as an attacker: nobody against
a root daemon. Each test is named after its finding (R1, R2…) and failed on the code before its fix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, daemon  # noqa: F401 (a fixture)
from tests.integration.test_identity import NOBODY, root_daemon  # noqa: F401 (a fixture)
from tuxai.envs import READY
from tuxai.envs.cache import USED, record_use
from tuxai.model.array import JobId
from tuxai.model.session import SOCKET, Kind, frame
from tuxai.store.arrays import target_rows
from tuxai.store.jobs import Store


def nobody_submits(home: Path, spec: dict[str, object], max_time_s: float = 20.0) -> tuple[int, dict[str, object]]:
    """POST /v1/jobs as uid 65534 (curl, the body from a file: it may be large); the status and the JSON."""
    body = home.parent / "body.json"
    body.write_text(json.dumps({"spec": spec}))
    body.chmod(0o644)
    argv = ["curl", "-s", "-w", "\n%{http_code}", "--max-time", str(max_time_s)]
    argv += ["--unix-socket", str(home / "tuxai.sock"), "-X", "POST", "-H", "content-type: application/json"]
    argv += ["-d", f"@{body}", "http://tuxai/v1/jobs"]
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd="/tmp", user=NOBODY, group=NOBODY, extra_groups=[],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"}, timeout=max_time_s + 10, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"curl {done.returncode}: no answer within {max_time_s} s"
    text, _, code = done.stdout.rpartition("\n")
    answer = json.loads(text) if text.startswith("{") else {"text": text}
    return int(code), answer


def test_R1_a_huge_after_id_is_one_4xx(root_daemon: DaemonProcess) -> None:  # noqa: F811
    for after in ("9" * 30, f"1_{'9' * 30}", "1_99999999999", "9" * 5000):
        code, answer = nobody_submits(root_daemon.home, {"command": ["true"], "after": after})
        assert code == 400, answer
        assert answer["error"] == "UsageError" and "is not a dependency" in str(answer["message"]), answer
    assert root_daemon.client.jobs() == []


def test_R2_a_malformed_array_is_one_4xx(root_daemon: DaemonProcess) -> None:  # noqa: F811
    for array in ("0-3%\u00b2", "9" * 5000, "0-5%" + "9" * 5000, "0-5:" + "9" * 5000):
        code, answer = nobody_submits(root_daemon.home, {"command": ["true"], "array": array, "hold": True})
        assert code == 400, answer
        assert answer["error"] == "UsageError" and str(answer["message"]).startswith("spec: array "), answer
    assert root_daemon.client.jobs() == []


def test_R3_thousands_of_dependencies_are_refused_at_once(root_daemon: DaemonProcess) -> None:  # noqa: F811
    """5,000 distinct --after ids took about a minute of a worker's CPU (each checked against every other
    one); 40,000 hours. Any local user could hold the API's threads with a few such bodies."""
    first = root_daemon.client.submit({"command": ["true"], "hold": True})
    started = time.monotonic()
    code, answer = nobody_submits(root_daemon.home, {"command": ["true"], "after": ",".join(map(str, range(1, 5001)))})
    assert code == 400 and "at most 1000 dependencies" in str(answer["message"]), answer
    assert time.monotonic() - started < 5
    code, answer = nobody_submits(root_daemon.home, {"command": ["true"], "after": [f"{first}:any"] * 50_000})
    assert code == 201, answer  # the same one many times is one dependency


def test_R4_root_marking_an_environment_use_follows_no_link_a_user_planted(tmp_path: Path) -> None:
    """``tuxai submit --env DIR`` run by root notes the use in ``DIR/.tuxai-used``: in a user's venv
    that was a symlink root followed, creating (or touching) any file the user named."""
    if os.getuid() != 0:
        pytest.skip("needs root: root's CLI against a directory of nobody's")
    env, target = tmp_path / "venv", tmp_path / "root-only" / "nologin"
    target.parent.mkdir(mode=0o700)
    env.mkdir()
    (env / READY).write_text("requirements.txt\n")
    (env / USED).symlink_to(target)
    os.chown(env, NOBODY, NOBODY)
    os.lchown(env / USED, NOBODY, NOBODY)
    record_use(env, now=1_000_000.0)
    assert not target.exists()
    (env / USED).unlink()
    os.chown(env, 0, 0)  # root's own environment: its use is marked
    record_use(env, now=1_000_000.0)
    assert (env / USED).stat().st_mtime == 1_000_000.0


def test_R5_a_malformed_session_frame_does_not_kill_the_root_shim(daemon: DaemonProcess) -> None:  # noqa: F811
    """A SIGNAL of 2.0 (equal to SIGINT in a set, not an int to killpg) or a deeply nested JSON payload
    raised in the shim, root's supervisor of the job: it died and the job failed."""
    job_id = daemon.client.submit({"command": ["sleep", "60"], "session": "pipe", "grace": "1s"})
    path = daemon.home / "jobs" / str(job_id) / SOCKET
    deadline = time.monotonic() + 15
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for payload in (b'{"signal": 2.0}', b"[" * 100_000):
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
            client.sendall(frame(Kind.HELLO, b'{"rows": 24, "cols": 80}') + frame(Kind.SIGNAL, payload))
            client.sendall(frame(Kind.RESIZE, b"[" * 100_000))
            time.sleep(1.0)
    job = daemon.client.job(job_id)
    assert job.state == "running", job.reason
    daemon.client.cancel(job_id)


def test_R6_the_ticks_dependency_read_has_no_sql_variable_limit(tmp_path: Path) -> None:
    """Every tick reads what all waiting jobs' ``--after`` name in one ``IN (?, …)``, two variables a
    target: past SQLite's 250,000 (130 jobs of 1,000 ids: one user, 13 arrays of 10,000 tasks to name)
    it raised in every tick, and nobody's job was scheduled again."""
    store = Store(tmp_path / "tuxai.db")
    try:
        found = target_rows(store, [JobId(i) for i in range(1, 130_001)])
        assert len(found) == 130_000 and not any(found.values())
    finally:
        store.close()
