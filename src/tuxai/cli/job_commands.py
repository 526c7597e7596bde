"""The daemon's commands: up, down, submit, ls, show, logs, cancel, hold, release, gpus, top, status.

Declarations only; each body is one call into ``tuxai.cli.jobs`` (or ``top``) through the SDK.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Annotated

import typer

from tuxai.cli.common import DebugOption, HomeOption, JsonOption, daemon_home, guard
from tuxai.model.mapping import declared_fields
from tuxai.settings import CONFIG_HELP, DaemonSettings

jobs_app = typer.Typer()


def _up(home: Path | None, config: Path | None, detach: bool, debug: bool, **given: object) -> None:
    """Start the daemon (foreground; --detach for the background). Each setting is also a TUXAI_* variable
    and a key under `daemon:` in the config file (docs/jobs.md)."""
    from tuxai.cli.daemon import daemon_argv, run_up
    from tuxai.cli.jobs import home_dir

    for alias, (key, value) in _ALIASES.items():  # --no-cgroups: --cgroups off
        if given.pop(alias, False):
            given[key] = value

    def action() -> int:
        where = home_dir(home)
        return run_up(daemon_argv(where, config, given), where, detach)

    raise typer.Exit(guard(action, debug))


def _parameter(name: str, annotation: object, default: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _up_parameters() -> list[inspect.Parameter]:
    """``tuxai up``'s options: its own, then one per field of ``DaemonSettings`` (the daemon's flags)."""
    parameters = [
        _parameter("home", HomeOption, None),
        _parameter("config", Annotated[Path | None, typer.Option("--config", help=CONFIG_HELP, metavar="FILE")], None),
        _parameter(
            "detach",
            Annotated[bool, typer.Option("--detach", help="Run in the background; return once it answers.")],
            False,
        ),
    ]
    for field in declared_fields(DaemonSettings):
        if field.kind == "flag":
            option = typer.Option(field.flag, help=field.help())
            parameters.append(_parameter(field.key, Annotated[bool, option], False))
        else:
            option = typer.Option(field.flag, help=field.help(), metavar=field.metavar)
            parameters.append(_parameter(field.key, Annotated[str | None, option], None))
        for alias, value in field.rules.aliases:
            name = alias.removeprefix("--").replace("-", "_")
            _ALIASES[name] = (field.key, value)
            option = typer.Option(alias, help=f"Same as {field.flag} {value}.", hidden=True)
            parameters.append(_parameter(name, Annotated[bool, option], False))
    parameters.append(_parameter("debug", DebugOption, False))
    return parameters


_ALIASES: dict[str, tuple[str, str]] = {}  # the older flags of a setting: --no-cgroups → (cgroups, off)
_up.__signature__ = inspect.Signature(_up_parameters())  # type: ignore[attr-defined]
_up.__annotations__ = {p.name: p.annotation for p in _up.__signature__.parameters.values()}  # type: ignore[attr-defined]
up = jobs_app.command(name="up")(_up)


@jobs_app.command()
def down(home: HomeOption = None, debug: DebugOption = False) -> None:
    """Stop the daemon; running jobs go on and are adopted by the next `tuxai up`."""
    from tuxai.cli.daemon import run_down
    from tuxai.cli.jobs import home_dir

    raise typer.Exit(guard(lambda: run_down(home_dir(home)), debug))


@jobs_app.command(context_settings={"allow_interspersed_args": False})
def submit(
    command: Annotated[list[str] | None, typer.Argument(help="The command, after --.", metavar="-- COMMAND")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="A YAML job file.", metavar="FILE")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="A name for the job.", metavar="NAME")] = None,
    gpus: Annotated[
        str | None, typer.Option("--gpus", "-g", help="Whole GPUs (a slice of one: --gpu-share).", metavar="N")
    ] = None,
    nodes: Annotated[
        int | None, typer.Option("--nodes", help="A gang over N nodes, each with the GPUs asked for.", metavar="N")
    ] = None,
    gpus_per_node: Annotated[
        str | None, typer.Option("--gpus-per-node", help="A gang's GPUs on each node (as --gpus).", metavar="G")
    ] = None,
    launcher: Annotated[
        str | None,
        typer.Option("--launcher", help="torchrun: one rank per GPU; none: the command as given.", metavar="NAME"),
    ] = None,
    nproc_per_node: Annotated[
        int | None, typer.Option("--nproc-per-node", help="Processes per node (default: one per GPU).", metavar="N")
    ] = None,
    gpu_share: Annotated[
        float | None, typer.Option("--gpu-share", help="A slice of one GPU (0-1], with MPS.", metavar="FRACTION")
    ] = None,
    gpu_mem: Annotated[
        str | None, typer.Option("--gpu-mem", help="GPU memory for a slice: 10GiB.", metavar="SIZE")
    ] = None,
    mig: Annotated[
        str | None, typer.Option("--mig", help="MIG profile: 1g.10gb (with --gpus N instances).", metavar="PROFILE")
    ] = None,
    gpu_type: Annotated[
        str | None, typer.Option("--gpu-type", help="Allowed models: A100|H100.", metavar="MODELS")
    ] = None,
    cpus: Annotated[
        int | None, typer.Option("--cpus", "-c", help="CPUs (pinned, NUMA-local to the GPUs).", metavar="N")
    ] = None,
    mem: Annotated[str | None, typer.Option("--mem", help="Memory limit: 32GiB (cgroup).", metavar="SIZE")] = None,
    time_limit: Annotated[
        str | None,
        typer.Option(
            "--time",
            "-t",
            help="Time limit; a bare number is minutes, as in Slurm (seconds need s): 90, 90s, 4h, 2-12:00:00.",
            metavar="DURATION",
        ),
    ] = None,
    grace: Annotated[
        str | None, typer.Option("--grace", help="SIGTERM → SIGKILL grace (default 60s).", metavar="DURATION")
    ] = None,
    priority: Annotated[int | None, typer.Option("--priority", help="0-100 (default 0).", metavar="N")] = None,
    retries: Annotated[
        int | None, typer.Option("--retries", help="Restart a failed job up to N times.", metavar="N")
    ] = None,
    retry_backoff: Annotated[
        str | None,
        typer.Option("--retry-backoff", help="First retry delay, doubled each time (default 5s).", metavar="DURATION"),
    ] = None,
    no_requeue: Annotated[
        bool, typer.Option("--no-requeue", help="A preempted job ends as preempted instead of requeued.")
    ] = False,
    preemptible: Annotated[bool, typer.Option("--preemptible", help="Higher-priority jobs may preempt it.")] = False,
    workdir: Annotated[
        str | None, typer.Option("--workdir", "-w", help="Working directory (default: here).", metavar="DIR")
    ] = None,
    export: Annotated[
        list[str] | None,
        typer.Option("--export", "-e", help="A variable for the job (repeatable).", metavar="VAR=VALUE"),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option("--env", help="requirements.txt, a project dir or a venv: the job's Python environment."),
    ] = None,
    hold: Annotated[bool, typer.Option("--hold", help="Submit held (`tuxai release` lets it start).")] = False,
    image: Annotated[
        str | None, typer.Option("--image", help="Run in this OCI image through podman (docs/containers.md).")
    ] = None,
    shm_size: Annotated[
        str | None, typer.Option("--shm-size", help="The container's /dev/shm (default 8GiB).", metavar="SIZE")
    ] = None,
    after: Annotated[
        list[str] | None,
        typer.Option(
            "--after",
            help="Start once JOB ended ok; JOB:any after any end, JOB:fail after a failure (repeatable).",
            metavar="JOB[:ok|:any|:fail]",
        ),
    ] = None,
    array: Annotated[
        str | None,
        typer.Option(
            "--array", help="One job per index: 0-99, 1,3,5-7, 0-20:4; %N runs N at once.", metavar="INDICES[%N]"
        ),
    ] = None,
    serve_repo: Annotated[
        Path | None,
        typer.Option("--serve", help="Run `tuxai serve` on this model or repository as the job.", metavar="REPO"),
    ] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
    debug: DebugOption = False,
    session: Annotated[str | None, typer.Option("--session", hidden=True, help="pty or pipe: tuxai run's.")] = None,
) -> None:
    """Queue a job: tuxai submit --gpus 2 -- python train.py."""
    from tuxai.cli.arrays import submit_flags
    from tuxai.cli.jobs import build_spec, run_submit
    from tuxai.errors import UsageError

    def action() -> int:
        flags: dict[str, object] = {
            "name": name,
            "gpus": gpus if gpus is not None else gpus_per_node,  # over a job file's gpus, as --gpus
            "gpu_share": gpu_share,
            "gpu_mem": gpu_mem,
            "mig": mig,
            "gpu_type": gpu_type,
            "cpus": cpus,
            "mem": mem,
            "time": time_limit,
            "grace": grace,
            "priority": priority,
            "retries": retries,
            "retry_backoff": retry_backoff,
            "requeue": False if no_requeue else None,
            "preemptible": True if preemptible else None,
            "workdir": workdir,
            "export": export,
            "env": env,
            "hold": True if hold else None,
            **{"image": image, "shm_size": shm_size},  # a container job (model.container)
            **submit_flags(after, array),  # checked here, so that an error names the flag
            "session": session,
            **{"nodes": nodes, "gpus_per_node": gpus_per_node, "launcher": launcher},  # a gang (model.gang)
            "nproc_per_node": nproc_per_node,
        }
        if serve_repo is not None:
            from tuxai.cli.jobs import serve_command

            if command:
                raise UsageError("--serve runs the model server: give no command after --", hint="drop the command")
            command_words = serve_command(serve_repo, flags)  # with --image: flags['serve_model'] (docs/containers.md)
            flags["name"] = flags["name"] or f"serve-{serve_repo.resolve().name}"
            flags["retries"] = 3 if flags["retries"] is None else flags["retries"]
        else:
            command_words = list(command or [])
        spec = build_spec(file, flags, command_words)
        where = daemon_home(home)  # a user of the system daemon builds next to its envs

        def build_env(source: str) -> str:
            from tuxai.envs.submit import submit_env

            return submit_env(source, where / "envs")  # not writable for a user of a root daemon: their own

        if session:
            from tuxai.cli.session import run_session

            return run_session(home, spec, build_env)
        return run_submit(home, spec, build_env, as_json)

    raise typer.Exit(guard(action, debug))


def _run(pty: bool = False, **given: object) -> None:
    """Run an interactive session as a job, the terminal attached: tuxai run --gpus 1 --pty -- bash.

    Queued, placed, limited and measured like any job; while it waits, it says why (Ctrl-C cancels it).

    With --pty, Ctrl-p Ctrl-q detaches (the session goes on); `tuxai attach JOB` comes back.

    It ends when its command does, with the command's exit status."""
    submit(**given, session="pty" if pty else "pipe")  # type: ignore[arg-type]


_SUBMIT_TYPES = typing.get_type_hints(submit, include_extras=True)  # submit's options, read as typer reads them
_RUN_LEAVES_OUT = {"hold", "serve_repo", "as_json", "session", "array"}  # a session is one job, started now
_PTY = Annotated[bool, typer.Option("--pty", help="Run the command on a pseudo-terminal (a shell, an editor).")]
_run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [_parameter("pty", _PTY, False)]
    + [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=_SUBMIT_TYPES[p.name])
        for p in inspect.signature(submit).parameters.values()
        if p.name not in _RUN_LEAVES_OUT
    ]
)
_run.__annotations__ = {p.name: p.annotation for p in _run.__signature__.parameters.values()}  # type: ignore[attr-defined]
run = jobs_app.command(name="run", context_settings={"allow_interspersed_args": False})(_run)


@jobs_app.command()
def attach(
    job: Annotated[int, typer.Argument(help="The session's job id.")],
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Re-attach to an interactive session (yours; root: any). Ctrl-p Ctrl-q detaches again."""
    from tuxai.cli.session import run_attach

    raise typer.Exit(guard(lambda: run_attach(home, job), debug))


@jobs_app.command(name="ls")
def list_jobs(
    job: Annotated[
        str | None, typer.Argument(help="Only this job or array (12), every task of it, any state.", metavar="JOB")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", "-a", help="Finished jobs too.")] = False,
    state: Annotated[list[str] | None, typer.Option("--state", help="Only these states (repeatable).")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's jobs.", metavar="USER")] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Only names matching: 'train-*'.", metavar="GLOB")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most N jobs.", metavar="N")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only your own jobs.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Waiting jobs in decision order: priority terms, total, reason.")
    ] = False,
    expand: Annotated[bool, typer.Option("--expand", help="One line per task of an array, not one per array.")] = False,
    as_json: JsonOption = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """The queue, as squeue shows it: id, name, user, state, GPUs, waited, ran, and why a job waits."""
    from tuxai.cli.jobs import run_ls
    from tuxai.cli.queue import Selection

    def selection() -> Selection:
        return Selection(user, name, limit, mine, explain)  # a bad --limit: the guard's one line

    arrays = (expand, job)
    raise typer.Exit(guard(lambda: run_ls(home, everything, list(state or []), as_json, selection(), arrays), debug))


@jobs_app.command()
def show(
    job: Annotated[str, typer.Argument(help="The job id (12; 12_3: task 3 of array 12).")],
    as_json: JsonOption = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """One job in full, with its history."""
    from tuxai.cli.jobs import run_show

    raise typer.Exit(guard(lambda: run_show(home, job, as_json), debug))


@jobs_app.command()
def logs(
    job: Annotated[str, typer.Argument(help="The job id (12_3: task 3 of array 12).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job ends (a pending one: once it starts).")
    ] = False,
    tail: Annotated[int | None, typer.Option("--tail", "-n", help="Only the last N lines.", metavar="N")] = None,
    rank: Annotated[int | None, typer.Option("--rank", help="A multi-node job's node R only.", metavar="R")] = None,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """A job's output (stdout and stderr); a multi-node job's every node, its lines prefixed ``[rank R]``."""
    from tuxai.cli.jobs import run_logs

    raise typer.Exit(guard(lambda: run_logs(home, job, follow, tail, rank), debug))


JobIds = Annotated[list[str], typer.Argument(help="Job ids (12: a job or a whole array; 12_3: one task).")]


@jobs_app.command()
def cancel(jobs: JobIds, home: HomeOption = None, debug: DebugOption = False) -> None:
    """Cancel jobs (running ones get SIGTERM, their grace period, then SIGKILL)."""
    from tuxai.cli.jobs import run_each

    raise typer.Exit(guard(lambda: run_each(home, "cancel", jobs), debug))


@jobs_app.command()
def hold(jobs: JobIds, home: HomeOption = None, debug: DebugOption = False) -> None:
    """Keep pending jobs from starting."""
    from tuxai.cli.jobs import run_each

    raise typer.Exit(guard(lambda: run_each(home, "hold", jobs), debug))


@jobs_app.command()
def release(jobs: JobIds, home: HomeOption = None, debug: DebugOption = False) -> None:
    """Let held jobs start."""
    from tuxai.cli.jobs import run_each

    raise typer.Exit(guard(lambda: run_each(home, "release", jobs), debug))


@jobs_app.command()
def gpus(as_json: JsonOption = False, home: HomeOption = None, debug: DebugOption = False) -> None:
    """Who holds which GPU."""
    from tuxai.cli.jobs import run_gpus

    raise typer.Exit(guard(lambda: run_gpus(home, as_json), debug))


@jobs_app.command()
def top(
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Live view: every GPU's use and power, the job and user on it, the queue. q quits."""
    from tuxai.cli.jobs import client
    from tuxai.cli.top import run_top

    def action() -> int:
        with client(home) as api:
            api.health()  # fail here, with the one-line error, rather than inside the live screen
            return run_top(api, interval, once)

    raise typer.Exit(guard(action, debug))


@jobs_app.command()
def ui(
    no_open: Annotated[bool, typer.Option("--no-open", help="Print the link only; open no browser.")] = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """The web dashboard: a one-time login link (served on the daemon's --tcp address)."""
    from tuxai.cli.ui import run_ui

    raise typer.Exit(guard(lambda: run_ui(home, not no_open), debug))


@jobs_app.command()
def status(as_json: JsonOption = False, home: HomeOption = None, debug: DebugOption = False) -> None:
    """The daemon: pid, home, machine, cgroups, telemetry, Prometheus, and your limits beside your use."""
    from tuxai.cli.daemon import run_status

    raise typer.Exit(guard(lambda: run_status(home, as_json), debug))
