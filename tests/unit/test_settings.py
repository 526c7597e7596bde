"""Settings: flag > TUXAI_* environment > config file > default, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.errors import ConfigError
from tuxai.settings import load_settings


def test_defaults_for_a_user_and_for_root(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert load_settings(env=env, uid=1000).data_dir == tmp_path / ".local/share/tuxai"
    assert load_settings(env={**env, "XDG_DATA_HOME": "/xdg"}, uid=1000).data_dir == Path("/xdg/tuxai")
    assert load_settings(env=env, uid=0).data_dir == Path("/var/lib/tuxai")


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("probe_timeout_s: 3\nframework_timeout_s: 4\ninventory: /from/file.yaml\n")
    env = {"HOME": str(tmp_path), "TUXAI_FRAMEWORK_TIMEOUT_S": "5", "TUXAI_INVENTORY": "/from/env.yaml"}
    settings = load_settings({"inventory": Path("/from/flag.yaml")}, env=env, config_file=config, uid=1000)
    assert settings.probe_timeout_s == 3.0  # file
    assert settings.framework_timeout_s == 5.0  # env beats file
    assert settings.inventory == Path("/from/flag.yaml")  # flag beats env


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("python: /opt/venv/bin/python\n")
    settings = load_settings(env={"HOME": str(tmp_path), "TUXAI_CONFIG": str(config)}, uid=1000)
    assert settings.python == "/opt/venv/bin/python"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("probe_timeout_s: [", "is not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("colour: blue\n", "unknown settings: colour"),
        ("probe_timeout_s: soon\n", "probe_timeout_s must be a number of seconds, got 'soon'"),
        ("probe_timeout_s: -1\n", "must be positive"),
    ],
)
def test_bad_config_file(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_settings(env={"HOME": str(tmp_path)}, config_file=config, uid=1000)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"HOME": str(tmp_path), "TUXAI_CONFIG": str(tmp_path / "nope.yaml")}, uid=1000)


def test_bad_environment_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TUXAI_PROBE_TIMEOUT_S: probe_timeout_s must be a number"):
        load_settings(env={"HOME": str(tmp_path), "TUXAI_PROBE_TIMEOUT_S": "ten"}, uid=1000)


def test_unknown_flag() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings({"colour": "blue"}, env={}, uid=1000)
