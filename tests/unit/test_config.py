"""The daemon's settings, declared once (tuxai.settings.DaemonSettings): its flags, `tuxai up`'s
options, the TUXAI_* variables and the config file's `daemon:` keys all come from that one
declaration, with flag > env > file > default; and the one typed reader (tuxai.model.mapping)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from tuxai.api.server import parser
from tuxai.cli.daemon import daemon_argv
from tuxai.cli.main import app
from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.telemetry import POLICIES
from tuxai.errors import ConfigError, InventoryError
from tuxai.model.mapping import MappingReader, declared_fields, load_mapping, read_dataclass, rules
from tuxai.settings import (
    DaemonSettings,
    candidate_homes,
    default_config_file,
    load_daemon_settings,
)
from tuxai.telemetry.collector import TelemetryConfig

REPO = Path(__file__).parent.parent.parent
TWO_GPUS = REPO / "examples" / "inventories" / "two-gpu-box.yaml"
DECLARED = declared_fields(DaemonSettings)


def _from_flags(*argv: str, env: dict[str, str] | None = None) -> DaemonSettings:
    args = vars(parser().parse_args(list(argv)))
    args.pop("home"), args.pop("config")
    return load_daemon_settings(args, env=env or {}, uid=1000)


def test_the_flags_tests_and_people_already_pass_keep_working() -> None:
    settings = _from_flags(
        "--metrics-addr", "127.0.0.1:0", "--tick-period", "0.5", "--job-pids-max", "64", "--keep-finished", "90d",
        "--inventory", str(TWO_GPUS), "--tcp", "0.0.0.0:0", "--insecure-tcp", "--cgroup-every-job",
        "--idle-after", "1.5", "--hung-after", "2.5", "--on-hung", "cancel", "--telemetry-period", "0.2",
        "--grid-intensity", "300", "--pue", "1.2", "--watts-per-cpu", "12", "--scheduler-config", str(TWO_GPUS),
    )  # fmt: skip
    assert settings == DaemonSettings(
        inventory=TWO_GPUS, scheduler_config=TWO_GPUS, tcp="0.0.0.0:0", insecure_tcp=True,
        metrics_addr="127.0.0.1:0", cgroups="all", job_pids_max=64, keep_finished_s=90 * 86400.0,
        tick_period_s=0.5, telemetry_period_s=0.2, idle_after_s=1.5, hung_after_s=2.5, on_hung="cancel",
        grid_intensity=300.0, pue=1.2, watts_per_cpu=12.0,
    )  # fmt: skip
    assert _from_flags("--no-cgroups").cgroups == "off"
    assert _from_flags() == DaemonSettings()


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("daemon:\n  tick_period: 2s\n  pue: 1.1\n  job_pids_max: 100\n  on_hung: cancel\n")
    env = {"TUXAI_CONFIG": str(config), "TUXAI_PUE": "1.5", "TUXAI_JOB_PIDS_MAX": "200"}
    settings = load_daemon_settings({"job_pids_max": "300"}, env=env, uid=1000)
    assert settings.job_pids_max == 300  # flag
    assert settings.pue == 1.5  # env over file
    assert (settings.tick_period_s, settings.on_hung) == (2.0, "cancel")  # file
    assert settings.grid_intensity == DaemonSettings().grid_intensity == 475.0  # default


def test_the_config_file_is_the_users_or_the_systems(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert default_config_file(env, uid=1000) == tmp_path / ".config/tuxai/config.yaml"
    assert default_config_file({**env, "XDG_CONFIG_HOME": "/x"}, uid=1000) == Path("/x/tuxai/config.yaml")
    assert default_config_file(env, uid=0) == Path("/etc/tuxai/config.yaml")  # a root daemon: the system's
    own = tmp_path / ".config/tuxai/config.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("daemon: {log_level: debug}\n")
    assert load_daemon_settings(env=env, uid=1000).log_level == "debug"


@pytest.mark.parametrize(
    ("flags", "env", "file", "starts"),
    [
        ({"tick_period": "soon"}, {}, "", "--tick-period must be a duration above 0 (90s, 30m, 4h, 2d), got 'soon'"),
        ({"job_pids_max": "-1"}, {}, "", "--job-pids-max must be an integer ≥ 0, got '-1'"),
        ({"cgroups": "some"}, {}, "", "--cgroups must be one of limits, all, off, got 'some'"),
        ({}, {"TUXAI_ON_HUNG": "kill"}, "", "TUXAI_ON_HUNG must be one of none, cancel, requeue, got 'kill'"),
        ({}, {"TUXAI_PUE": "0"}, "", "TUXAI_PUE must be a number above 0, got '0'"),
        ({}, {"TUXAI_INSECURE_TCP": "maybe"}, "", "TUXAI_INSECURE_TCP must be true or false, got 'maybe'"),
        ({}, {}, "daemon: {watts_per_cpu: lots}", "{file}: daemon.watts_per_cpu must be a number above 0"),
        ({}, {}, "daemon: {colour: blue}", "{file}: daemon: unknown setting 'colour'"),
        ({}, {}, "daemon: [1]", "{file}: daemon must be a mapping"),
        ({}, {}, "dameon: {}", "{file}: unknown setting 'dameon'"),
        ({}, {}, "daemon: {keep_finished: 1 year}", "{file}: daemon.keep_finished must be a duration"),
        ({}, {}, "daemon: {inventory: /nonexistent.yaml}", "{file}: daemon.inventory: /nonexistent.yaml does not"),
        ({"inventory": "/nonexistent.yaml"}, {}, "", "--inventory: /nonexistent.yaml does not exist"),
    ],
)
def test_a_bad_value_names_where_it_came_from(
    tmp_path: Path, flags: dict[str, str], env: dict[str, str], file: str, starts: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(file)
    with pytest.raises(ConfigError) as caught:
        load_daemon_settings(flags, env={**env, "TUXAI_CONFIG": str(config)}, uid=1000)
    assert caught.value.message.startswith(starts.format(file=config)), caught.value.message
    assert "\n" not in str(caught.value)


def test_one_declaration_behind_every_default_and_choice() -> None:
    defaults = DaemonConfig(home=Path("/h"), inventory=None)  # type: ignore[arg-type]
    assert defaults.job_pids_max == DaemonSettings().job_pids_max
    assert defaults.keep_finished_s == DaemonSettings().keep_finished_s == 365 * 86400
    assert defaults.cgroup_every_job is (DaemonSettings().cgroups == "all")
    telemetry = TelemetryConfig()  # the telemetry package may not read settings: its defaults must agree
    assert (telemetry.period_s, telemetry.watts_per_cpu, telemetry.grid_g_per_kwh, telemetry.pue) == (
        DaemonSettings().telemetry_period_s, DaemonSettings().watts_per_cpu, DaemonSettings().grid_intensity,
        DaemonSettings().pue,
    )  # fmt: skip
    assert (telemetry.detection.idle_after_s, telemetry.detection.hung_after_s) == (
        DaemonSettings().idle_after_s, DaemonSettings().hung_after_s
    )  # fmt: skip
    on_hung = next(f for f in DECLARED if f.key == "on_hung")
    assert on_hung.rules.choices == POLICIES
    for declared in DECLARED:
        assert declared.kind != "duration" or declared.name.endswith("_s"), declared.name  # names say the unit
        assert declared.rules.help, declared.name


def test_the_daemon_and_tuxai_up_take_the_same_flags() -> None:
    daemon = {flag for action in parser()._actions for flag in action.option_strings}
    command = typer.main.get_command(app)
    up = {flag for param in command.commands["up"].params for flag in param.opts}  # type: ignore[attr-defined]
    declared = {d.flag for d in DECLARED} | {alias for d in DECLARED for alias, _ in d.rules.aliases}
    assert declared | {"--home", "--config"} <= daemon
    assert declared | {"--home", "--config", "--detach"} <= up
    assert len(declared) >= 20


def test_up_refuses_a_bad_value_in_one_line_before_starting(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "h")]
    done = runner.invoke(app, ["up", *home, "--tick-period", "abc"])
    assert done.exit_code == 2
    assert done.output == (
        "error: --tick-period must be a duration above 0 (90s, 30m, 4h, 2d), got 'abc' "
        "(the settings are in docs/jobs.md and `tuxai up --help`)\n"
    )
    done = runner.invoke(app, ["up", *home], env={"TUXAI_ON_HUNG": "kill"})
    assert done.exit_code == 2 and done.output.startswith("error: TUXAI_ON_HUNG must be one of")
    assert not (tmp_path / "h").exists()  # refused before anything was made


def test_up_passes_the_settings_given_on_to_the_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "box.yaml").write_text(TWO_GPUS.read_text())
    argv = daemon_argv(tmp_path / "h", None, {"tick_period": "2s", "insecure_tcp": True, "inventory": "box.yaml"})
    assert argv[1:] == [
        "-m", "tuxai.api.server", "--home", str(tmp_path / "h"),
        "--inventory", str(tmp_path / "box.yaml"), "--insecure-tcp", "--tick-period", "2s",
    ]  # fmt: skip


def test_a_client_looks_in_its_own_home_then_the_systems(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "TUXAI_SYSTEM_HOME": "/srv/tuxai"}
    assert candidate_homes(env=env, uid=1000) == (tmp_path / ".local/share/tuxai", Path("/srv/tuxai"))
    assert candidate_homes(env=env, uid=0) == (Path("/srv/tuxai"),)  # root's own home is the system's
    assert candidate_homes(env={**env, "TUXAI_HOME": "/mine"}, uid=1000) == (Path("/mine"),)
    assert candidate_homes(Path("/flag"), env=env, uid=1000) == (Path("/flag"),)
    assert candidate_homes(env={"HOME": str(tmp_path)}, uid=1000)[1] == Path("/var/lib/tuxai")


# ---- the one typed reader ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Policy:
    grace_s: float = field(default=60.0, metadata=rules("SIGTERM → SIGKILL", duration=True))
    retries: int = field(default=0, metadata=rules("restarts", maximum=10))
    share: float = field(default=1.0, metadata=rules("a slice", above=0, maximum=1))
    name: str = ""
    fast: bool = False


def test_read_dataclass_by_declared_kinds() -> None:
    reader = load_mapping("grace: 2m\nretries: 3\nshare: 0.5\nname: x\nfast: true\n", "p.yaml", ConfigError)
    assert read_dataclass(_Policy, reader) == _Policy(120.0, 3, 0.5, "x", True)
    assert read_dataclass(_Policy, load_mapping("", "p.yaml", ConfigError)) == _Policy()
    base = dataclasses.replace(_Policy(), retries=5)
    assert read_dataclass(_Policy, load_mapping("name: y", "p.yaml", ConfigError), base).retries == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retries: 11", "p.yaml: retries must be an integer between 0 and 10, got 11"),
        ("retries: '3'", "p.yaml: retries must be an integer between 0 and 10, got '3'"),  # YAML text is not a number
        ("share: 0", "p.yaml: share must be a number above 0 and at most 1, got 0"),
        ("share: .nan", "p.yaml: share must be a number above 0 and at most 1, got nan"),
        ("fast: 1", "p.yaml: fast must be true or false, got 1"),
        ("grace: -5", "p.yaml: grace must be a duration (90s, 30m, 4h, 2d), got -5"),
        ("grace_s: 5", "p.yaml: unknown setting 'grace_s'"),
        ("name: [a]", "p.yaml: name must be text, got ['a']"),
        ("a: 1\nb: [", "p.yaml: not valid YAML at line 2"),
    ],
)
def test_reader_errors_name_the_file_and_the_field(text: str, message: str) -> None:
    with pytest.raises(InventoryError) as caught:
        read_dataclass(_Policy, load_mapping(text, "p.yaml", InventoryError, hint="see the docs"))
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.hint


def test_text_values_read_as_yaml_would_and_nested_places_are_named() -> None:
    text = MappingReader({"n": "12", "f": "off", "x": "1.5"}, "TUXAI", error=ConfigError, text=True)
    assert (text.integer("n"), text.flag("f"), text.number("x")) == (12, False, 1.5)
    nested = load_mapping("gpus:\n  a: {count: two}\n", "box.yaml", InventoryError).child("gpus").child("a")
    with pytest.raises(InventoryError, match=r"^box.yaml: gpus.a.count must be an integer ≥ 1, got 'two'$"):
        nested.integer("count", minimum=1)


def test_the_scheduler_policy_file_is_read_by_the_same_reader() -> None:
    from tuxai.scheduler.config import parse_scheduler_config

    assert parse_scheduler_config("reservations: 2\nweight_age: 10.5\n", "p.yaml").reservations == 2
    with pytest.raises(ConfigError, match=r"^p.yaml: reservations must be an integer ≥ 0, got 1.5 \("):
        parse_scheduler_config("reservations: 1.5\n", "p.yaml")  # was taken: 1.5 reservations
    with pytest.raises(ConfigError, match=r"^p.yaml: not valid YAML at line 2: "):
        parse_scheduler_config("backfill: true\nweight_age: ]\n", "p.yaml")
