"""Settings: flag > TUXAI_* environment > config file > default, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.errors import ConfigError
from tuxai.settings import load_settings, resolve_home


def test_defaults_for_a_user_and_for_root(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert resolve_home(env=env, uid=1000) == tmp_path / ".local/share/tuxai"
    assert resolve_home(env={**env, "XDG_DATA_HOME": "/xdg"}, uid=1000) == Path("/xdg/tuxai")
    assert resolve_home(env=env, uid=0) == Path("/var/lib/tuxai")
    assert resolve_home(env={**env, "TUXAI_HOME": "/h"}, uid=0) == Path("/h")
    assert resolve_home(Path("/flag"), env={**env, "TUXAI_HOME": "/h"}, uid=0) == Path("/flag")


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("probe_timeout: 3\nframework_timeout: 4\ninventory: /from/file.yaml\n")
    env = {"HOME": str(tmp_path), "TUXAI_FRAMEWORK_TIMEOUT": "5s", "TUXAI_INVENTORY": "/from/env.yaml"}
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
        ("probe_timeout: [", "not valid YAML at line 1"),
        ("- a\n- b\n", "must be a mapping"),
        ("colour: blue\n", "unknown setting 'colour'"),
        ("probe_timeout: soon\n", "probe_timeout must be a duration above 0 (90s, 30m, 4h, 2d), got 'soon'"),
        ("probe_timeout: 0\n", "must be a duration above 0"),
    ],
)
def test_bad_config_file(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"HOME": str(tmp_path)}, config_file=config, uid=1000)
    assert caught.value.message.startswith(f"{config}: ") and message in caught.value.message


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"HOME": str(tmp_path), "TUXAI_CONFIG": str(tmp_path / "nope.yaml")}, uid=1000)


def test_bad_environment_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^TUXAI_PROBE_TIMEOUT must be a duration"):
        load_settings(env={"HOME": str(tmp_path), "TUXAI_PROBE_TIMEOUT": "ten"}, uid=1000)


def test_unknown_flag() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings({"colour": "blue"}, env={}, uid=1000)
