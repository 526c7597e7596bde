"""A job environment built on a cluster node from its lockfile's text, by the shim's side of it
(``executor.node_env``, which runs ``tuxai.envs.node`` as a real process and real uv), offline: the
lockfile names a wheel made on the spot (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import tuxai
from tests.wheels import make_wheel
from tuxai.envs import READY
from tuxai.envs.node import lock_text
from tuxai.envs.pip_kept import kept_for, kept_pip_settings
from tuxai.executor.node_env import build_on_node
from tuxai.executor.rundir import Launch
from tuxai.model.jobfile import spec_from_dict, spec_to_dict


def _launch(tmp_path: Path, text: str) -> Launch:
    env = {"PATH": "/submitter/env/bin:/usr/bin:/bin", "VIRTUAL_ENV": "/submitter/env", "HOME": str(tmp_path)}
    return Launch(1, 1, ("python",), env, "/", str(tmp_path / "out.log"), env_lock=text,
                  env_cache=str(tmp_path / "node-cache"), node="127.0.0.9")  # fmt: skip


def _build(launch: Launch) -> tuple[dict[str, str], str]:
    log = os.open(launch.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return build_on_node(launch, None, log), Path(launch.log_path).read_text()
    finally:
        os.close(log)


def test_E15_a_node_builds_the_env_from_the_lockfile_text_into_its_cache_then_reuses_it(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    launch = _launch(tmp_path, f"{wheel}\n")
    env, said = _build(launch)
    venv = Path(env["VIRTUAL_ENV"])
    assert venv.parent == tmp_path / "node-cache" and (venv / READY).is_file()
    assert env["PATH"] == f"{venv}/bin:/usr/bin:/bin"  # the submitter's env is no longer on PATH
    assert "node 127.0.0.9: building the job environment" in said and "node 127.0.0.9: built" in said
    assert (tmp_path / "node-cache" / "sources").is_dir()  # the lockfile kept under its hash, on the node
    done = subprocess.run([f"{venv}/bin/python", "-c", "import tiny; print(tiny.VALUE)"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout == "42\n"

    again, said = _build(launch)
    assert again["VIRTUAL_ENV"] == str(venv)
    assert f"node 127.0.0.9: reusing the job environment {venv}" in said and "building" not in said


def test_E15_a_build_that_fails_fails_the_attempt_with_the_builds_last_lines(tmp_path: Path) -> None:
    launch = _launch(tmp_path, f"{tmp_path / 'missing-1.0-py3-none-any.whl'}\n")
    with pytest.raises(subprocess.SubprocessError) as failed:
        _build(launch)
    reason = str(failed.value)
    assert reason.startswith("the job environment could not be built on node 127.0.0.9: ")
    assert "missing-1.0-py3-none-any.whl" in reason and "failed (uv exit" in reason
    assert "building the job environment" in Path(launch.log_path).read_text()  # and the whole of it in the log
    assert not any(p.name != "sources" for p in (tmp_path / "node-cache").iterdir())  # nothing half-built left


def test_E15_submit_sends_the_requirements_text_and_the_spec_keeps_it(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tiny==1.0\n")
    assert lock_text(str(requirements)) == "tiny==1.0\n"
    assert lock_text(str(tmp_path)) == ""  # a project or a venv travels as its path
    spec = spec_from_dict({"command": "python t.py", "env": "/e", "env_lock": "tiny==1.0\n"})
    assert spec.env_lock == "tiny==1.0\n" and spec_from_dict(spec_to_dict(spec)) == spec


def test_E15_a_node_keeps_pips_settings_until_a_pip_config_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nfind-links = /opt/first\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)  # the variable would win over the file
    assert kept_pip_settings(tmp_path).find_links == ("/opt/first",)
    (kept,) = tmp_path.glob("pip-*.json")
    kept.write_text(json.dumps({**json.loads(kept.read_text()), "find_links": ["/opt/sentinel"]}))
    assert kept_pip_settings(tmp_path).find_links == ("/opt/sentinel",)  # kept: no pip run
    config.write_text("[global]\nfind-links = /opt/second/wheels\n")  # another size: read again
    assert kept_pip_settings(tmp_path).find_links == ("/opt/second/wheels",)


def test_F8_a_kept_pip_file_is_what_comes_back_and_one_strictly_read(tmp_path: Path) -> None:
    first = kept_for(tmp_path)
    (kept,) = (tmp_path / "sources").glob("pip-*.json")  # a submit's and a node's: one folder
    data = json.loads(kept.read_text())
    kept.write_text(json.dumps({**data, "find_links": ["/opt/sentinel"]}))
    assert kept_for(tmp_path).find_links == ("/opt/sentinel",)  # kept: read back, pip not asked
    kept.write_text(json.dumps({**data, "find_links": ["/opt/sentinel"], "added_later": "x"}))
    assert kept_for(tmp_path) == first  # a field too many: pip asked again
    kept.write_text(json.dumps({k: v for k, v in {**data, "find_links": ["/opt/sentinel"]}.items() if k != "cert"}))
    assert kept_for(tmp_path) == first  # a field missing: pip asked again, no default taken
    kept.write_text(json.dumps({**data, "find_links": "/opt/sentinel"}))
    assert kept_for(tmp_path) == first  # a field of another type


def test_F8_a_new_tuxai_version_does_not_read_an_old_kept_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept_for(tmp_path)
    monkeypatch.setattr(tuxai, "__version__", "99.0")
    kept_for(tmp_path)
    assert len(list((tmp_path / "sources").glob("pip-*.json"))) == 2
