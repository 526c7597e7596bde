"""Who asks, from SO_PEERCRED: a root daemon runs a user's job as that user, and users keep to their own jobs.

Needs root (CI runs as root) to start the daemon and to run a client as another uid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, finish

NOBODY = 65534


@pytest.fixture
def root_daemon() -> Iterator[DaemonProcess]:
    """A daemon as root whose home another user can reach (pytest's tmp_path is private)."""
    if os.getuid() != 0:
        pytest.skip("needs root: the daemon must run as root to run jobs as their submitters")
    base = Path(tempfile.mkdtemp(prefix="tuxai-identity-"))
    base.chmod(0o755)
    process = DaemonProcess(base / "home").start()
    try:
        yield process
    finally:
        finish(process)
        shutil.rmtree(base, ignore_errors=True)


def as_nobody(home: Path, method: str, path: str, body: object = None, raw: bool = False) -> tuple[int, object]:
    """An HTTP request on the daemon's socket from ``curl`` running as uid/gid 65534 (``raw``: the text).

    (curl, not our CLI: this interpreter lives under /root, which nobody may not enter.)
    """
    argv = ["curl", "-s", "-w", "\n%{http_code}", "--unix-socket", str(home / "tuxai.sock"), "-X", method]
    if body is not None:
        argv += ["-H", "content-type: application/json", "-d", json.dumps(body)]
    done = subprocess.run(
        [*argv, f"http://tuxai{path}"], capture_output=True, text=True, cwd="/tmp", user=NOBODY, group=NOBODY,
        extra_groups=[], timeout=60, check=True,
    )  # fmt: skip
    text, _, code = done.stdout.rpartition("\n")
    return int(code), text if raw else json.loads(text)


def test_job_runs_as_its_submitter_who_sees_the_queue_and_cancels_only_their_own(root_daemon: DaemonProcess) -> None:
    mine = root_daemon.client.submit({"command": ["sleep", "30"], "grace": "1s"})
    script = "id -u; id -g; touch $TUXAI_CHECKPOINT_DIR/ok"
    code, answer = as_nobody(
        root_daemon.home, "POST", "/v1/jobs", {"spec": {"command": ["sh", "-c", script], "workdir": "/tmp"}}
    )
    assert code == 201, answer
    theirs = answer["id"]  # type: ignore[index]
    job = root_daemon.wait_all([theirs])[theirs]
    assert job.state == "succeeded", job.reason
    assert job.user == "nobody"
    assert root_daemon.log(theirs).split() == [str(NOBODY), str(NOBODY)]
    log = Path(str(job.log_path))
    assert (log.stat().st_uid, (log.parent / "checkpoint" / "ok").stat().st_uid) == (NOBODY, NOBODY)

    # The queue is everyone's to see (as Slurm's squeue); root's command is root's.
    code, seen = as_nobody(root_daemon.home, "GET", "/v1/jobs")
    assert code == 200 and [j["id"] for j in seen] == [mine, theirs]  # type: ignore[union-attr]
    assert "command" not in seen[0] and seen[0]["user"] == "root" and "command" in seen[1]  # type: ignore[index]
    code, refused = as_nobody(root_daemon.home, "POST", f"/v1/jobs/{mine}/cancel")
    assert code == 403 and refused["message"] == f"job {mine} belongs to root: you cannot cancel it"  # type: ignore[index]
    code, public = as_nobody(root_daemon.home, "GET", f"/v1/jobs/{mine}")
    assert code == 200 and "command" not in public and "events" not in public  # type: ignore[operator]
    code, _ = as_nobody(root_daemon.home, "POST", "/v1/shutdown")
    assert code == 403
    # Root sees and may cancel everybody's jobs.
    assert {j.id for j in root_daemon.client.jobs()} == {mine, theirs}
    root_daemon.client.cancel(mine)
    assert root_daemon.wait_all([mine])[mine].state == "cancelled"
