"""``--env``'s lockfile text goes only where a cluster's nodes build from it (review item 3): a local daemon
keeps no copy (none per array task), no ``ls``/``show`` answer carries it, and a big lockfile submits."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon_helpers import DaemonProcess
from tests.wheels import make_wheel
from tuxai.api.views import job_view
from tuxai.model.job import JobSpec
from tuxai.store import Store

MARK = "lock-text-marker"


def _tuxai(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUXAI_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "tuxai", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)  # fmt: skip


def test_F3_a_local_daemon_keeps_no_lockfile_text_and_ls_show_carry_none(daemon: DaemonProcess, tmp_path: Path) -> None:
    assert daemon.client.health().engine == "local"
    wheel = make_wheel(tmp_path, "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    requirements = tmp_path / "requirements.txt"
    padding = f"# {MARK} {'x' * 100}\n" * 12_000  # 1.2 MiB, over the API's 1 MiB body: a hashed lockfile's size
    requirements.write_text(f"{padding}{wheel}\n")
    done = _tuxai(daemon.home, "submit", "--json", "--hold", "--array", "0-2", "--env", str(requirements), "--", "true")
    assert done.returncode == 0, done.stderr  # before: 413, the text sent to a daemon that ignores it
    array = json.loads(done.stdout)["id"]
    old_client = daemon.client.submit({"command": "true", "hold": True, "array": "0-2", "env_lock": f"{MARK}\n"})

    with sqlite3.connect(daemon.home / "tuxai.db") as db:
        specs = [json.loads(row[0]) for row in db.execute("SELECT spec_json FROM jobs")]
    assert len(specs) == 6 and all(not spec.get("env_lock") for spec in specs)  # no task keeps a copy
    assert specs[0]["env"]  # the environment built on this machine: the job's path
    listed = _tuxai(daemon.home, "ls", "--all", "--json")
    shown = [_tuxai(daemon.home, "show", str(job_id), "--json") for job_id in (array, old_client)]
    for answer in (listed, *shown):
        assert answer.returncode == 0 and MARK not in answer.stdout, answer.stderr


def test_F3_a_job_shown_to_its_owner_carries_no_lockfile_text(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuxai.db")  # a Ray daemon's job keeps the text for its launch
    job_id = store.submit(JobSpec(("true",), env_path="/e", env_lock=f"{MARK}\n"), ("u", 1, 1, ()), {}, time.time())
    record = store.get(job_id)
    assert record.spec.env_lock == f"{MARK}\n"
    view = job_view(record, time.time())
    assert view.spec.env_lock == "" and view.spec.env_path == "/e"
    store.close()
