"""`tuxai mlflow ui`'s login (T2): MLflow's basic-auth configuration in a folder only its user can enter."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest

from tuxai.cli.mlflow_ui import UI_USER, ui_environment, ui_login
from tuxai.errors import UsageError


def test_T2_ui_login_is_a_random_password_kept_in_files_only_the_user_can_read(tmp_path: Path) -> None:
    folder = tmp_path / "mlflow/ui"
    config, password_file = ui_login(folder)
    password = password_file.read_text().strip()
    assert len(password) >= 24 and password_file.parent == folder == config.parent
    modes = {stat.S_IMODE(path.stat().st_mode) for path in (config, password_file)}
    assert modes == {0o600} and stat.S_IMODE(folder.stat().st_mode) == 0o700
    parsed = configparser.ConfigParser()
    parsed.read(config)
    section = parsed["mlflow"]
    assert section["admin_username"] == UI_USER and section["admin_password"] == password
    assert (
        section["default_permission"] == "NO_PERMISSIONS" and section["database_uri"] == f"sqlite:///{folder}/auth.db"
    )
    assert ui_login(folder)[1].read_text().strip() == password  # kept across starts
    (folder / "auth.db").write_text("an admin whose password was lost")
    password_file.unlink()
    assert ui_login(folder)[1].read_text().strip() != password and not (folder / "auth.db").exists()


def test_T2_ui_environment_names_the_config_and_drops_the_callers_admin_overrides(tmp_path: Path) -> None:
    given = {"PATH": "/bin", "MLFLOW_AUTH_ADMIN_PASSWORD": "x", "MLFLOW_AUTH_ADMIN_USERNAME": "mallory"}
    env = ui_environment(tmp_path / "auth.ini", given)
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == str(tmp_path / "auth.ini") and env["PATH"] == "/bin"
    assert len(env["MLFLOW_FLASK_SERVER_SECRET_KEY"]) == 64 and not any(k.startswith("MLFLOW_AUTH_ADMIN") for k in env)


def test_T2_ui_login_reads_no_password_through_a_link(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "ui", tmp_path / "elsewhere"
    folder.mkdir(mode=0o700)
    elsewhere.write_text("a password chosen by whoever made the link\n")
    (folder / "password").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="not your own regular file"):
        ui_login(folder)
