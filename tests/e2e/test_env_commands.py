"""``tuxai env create/ls/rm/gc`` and ``doctor --env`` through the real CLI and daemon, on
environments built offline from wheels made on the spot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon_helpers import DaemonProcess
from tests.e2e.test_doctor_cli import one_line_error
from tests.wheels import make_wheel

ORT = 'get_available_providers = lambda: ["CPUExecutionProvider"]\n__version__ = "0.0.1+tuxaitest"\n'


def env_cli(home: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``tuxai ARGS`` for this daemon, building in ``cache`` (XDG_CACHE_HOME is used only where the
    daemon's envs are not writable; root writes <home>/envs)."""
    env = {**os.environ, "COLUMNS": "200", "TUXAI_HOME": str(home), "XDG_CACHE_HOME": str(cache)}
    return subprocess.run([sys.executable, "-m", "tuxai", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)  # fmt: skip


def requirements(folder: Path, name: str, modules: dict[str, str]) -> Path:
    """A requirements file naming one wheel made now."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = make_wheel(folder, name, modules)
    path = folder / "requirements.txt"
    path.write_text(f"{wheel}\n")
    return path


def test_env_ls_rm_gc_with_size_and_last_use(daemon: DaemonProcess, tmp_path: Path) -> None:
    home, cache = daemon.home, tmp_path / "cache"
    tiny = requirements(tmp_path / "tiny", "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    spare = requirements(tmp_path / "spare", "spare", {"spare/__init__.py": "VALUE = 7\n"})
    for name, source in (("tiny", tiny), ("spare", spare)):
        made = env_cli(home, cache, "env", "create", name, str(source))
        assert made.returncode == 0, made.stderr
    listed = json.loads(env_cli(home, cache, "env", "ls", "--json").stdout)
    assert {e["names"] for e in listed} == {"tiny", "spare"}
    assert all(e["size_bytes"] > 50_000 and e["last_used_at"] is None for e in listed)  # a venv: python…

    # A job uses tiny: its last use is now; held, it stays active while we tidy.
    before = time.time()
    done = env_cli(home, cache, "submit", "--json", "--hold", "--env", "tiny", "--", "python", "-c", "import tiny")
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]
    used = {e["names"]: e for e in json.loads(env_cli(home, cache, "env", "ls", "--json").stdout)}
    assert used["tiny"]["last_used_at"] >= before - 1 and used["spare"]["last_used_at"] is None
    (Path(used["tiny"]["path"]) / ".tuxai-used").unlink()  # a user cannot mark root's shared env: the store says
    again = {e["names"]: e for e in json.loads(env_cli(home, cache, "env", "ls", "--json").stdout)}
    assert again["tiny"]["last_used_at"] >= before - 1
    table = env_cli(home, cache, "env", "ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "LAST", "USED", "BUILT", "FROM", "PATH"]
    assert any(r.split()[0] == "tiny" and "just now" in r for r in table)
    assert any(r.split()[0] == "spare" and " never " in r and "KiB" in r for r in table)

    # gc: whatever nobody used for 0 days goes, but never what an active job uses.
    dry = env_cli(home, cache, "env", "gc", "--unused-days", "0", "--dry-run")
    assert dry.returncode == 0 and "would remove" in dry.stdout and "(spare)" in dry.stdout and "tiny" not in dry.stdout
    assert len(json.loads(env_cli(home, cache, "env", "ls", "--json").stdout)) == 2
    gone = env_cli(home, cache, "env", "gc", "--unused-days", "0")
    assert gone.returncode == 0 and "removed" in gone.stdout and "1 environment(s)" in gone.stdout, gone.stderr
    assert [e["names"] for e in json.loads(env_cli(home, cache, "env", "ls", "--json").stdout)] == ["tiny"]
    kept = env_cli(home, cache, "env", "gc", "--unused-days", "30")
    assert kept.returncode == 0 and kept.stdout.startswith("0 environment(s)")

    # rm: refused while the job is active, done once it ended; the name goes with it.
    assert "used by an active job" in one_line_error(env_cli(home, cache, "env", "rm", "tiny"))
    daemon.client.release(job_id)
    assert daemon.wait_all([job_id])[job_id].state == "succeeded", daemon.log(job_id)
    removed = env_cli(home, cache, "env", "rm", "tiny")
    assert removed.returncode == 0 and removed.stdout.startswith("removed ") and "(named tiny)" in removed.stdout
    assert json.loads(env_cli(home, cache, "env", "ls", "--json").stdout) == []
    assert "no such file, directory or named environment" in one_line_error(env_cli(home, cache, "env", "rm", "tiny"))
    assert "--env tiny" in one_line_error(env_cli(home, cache, "submit", "--env", "tiny", "--", "true"))


def test_env_gc_removes_nothing_it_cannot_check(tmp_path: Path) -> None:
    line = one_line_error(env_cli(tmp_path / "home", tmp_path / "cache", "env", "gc"))
    assert "daemon is not running" in line


def test_doctor_env_probes_the_frameworks_of_that_environment(daemon: DaemonProcess, tmp_path: Path) -> None:
    home, cache = daemon.home, tmp_path / "cache"
    fake = requirements(tmp_path / "ort", "onnxruntime", {"onnxruntime/__init__.py": ORT})
    assert env_cli(home, cache, "env", "create", "ort", str(fake)).returncode == 0
    done = env_cli(home, cache, "doctor", "--env", "ort", "--json")
    assert done.returncode in (0, 1), done.stderr  # 1: this machine has error findings of its own
    frameworks = {f["name"]: f for f in json.loads(done.stdout)["frameworks"]}
    assert frameworks["onnxruntime"]["version"] == "0.0.1+tuxaitest"  # that env's, not tuxai's own
    assert frameworks["torch"]["installed"] is False
    assert done.stderr.startswith("frameworks of the environment ort: ") and "/bin/python" in done.stderr
    assert "no such file, directory or named environment" in one_line_error(
        env_cli(home, cache, "doctor", "--env", "nope")
    )
