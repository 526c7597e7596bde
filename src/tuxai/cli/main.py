"""``tuxai``: the Typer application and its error handling."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from tuxai import __version__
from tuxai.errors import TuxaiError

app = typer.Typer(
    name="tuxai",
    help="Make this Linux machine a good home for AI work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USAGE = 2


def _version(value: bool) -> None:
    if value:
        print(f"tuxai {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """tuxai: doctor, jobs, telemetry and serving for GPU machines."""


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (docs/doctor-json.md).")] = False,
    no_frameworks: Annotated[
        bool, typer.Option("--no-frameworks", help="Skip the framework probes (the slow part).")
    ] = False,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", help="Use a simulated inventory (YAML) instead of this machine.", metavar="FILE"),
    ] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Save every raw tool output into DIR.", metavar="DIR")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Build the report from a --record folder.", metavar="DIR")
    ] = None,
    python: Annotated[
        str | None, typer.Option("--python", help="Interpreter whose frameworks to probe.", metavar="PATH")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Report what this machine really has and what hurts ML work on it.

    Exit status: 0 without error findings, 1 with, 2 on usage errors.
    """
    from tuxai.cli.doctor import run_doctor

    code = _guard(
        lambda: run_doctor(
            as_json=as_json,
            frameworks=not no_frameworks,
            inventory=inventory,
            record=record,
            replay=replay,
            python=python,
        ),
        debug,
    )
    raise typer.Exit(code)


@app.command()
def sim(
    jobs: Annotated[Path, typer.Option("--jobs", help="The trace's pod (job) list CSV.", metavar="POD_CSV")],
    cluster: Annotated[Path, typer.Option("--cluster", help="The trace's node list CSV.", metavar="NODE_CSV")],
    mode: Annotated[str, typer.Option("--mode", help="time or packing.")] = "packing",
    policy: Annotated[
        str,
        typer.Option(
            "--policy", help="Comma-separated: packing random,best-fit,fgd,tuxai; time fifo,backfill,sjf,tuxai."
        ),
    ] = "tuxai",
    format_name: Annotated[str, typer.Option("--format", help="The trace format.")] = "openb",
    seed: Annotated[int | None, typer.Option("--seed", help="One seed (default 42).")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="Several seeds: 42-51 or 42,43.")] = None,
    runtimes: Annotated[
        Path | None, typer.Option("--runtimes", help="Time mode: runtime CSV (philly_runtime.csv).", metavar="FILE")
    ] = None,
    count: Annotated[int, typer.Option("--count", help="Time mode: jobs to draw.")] = 5000,
    nodes: Annotated[int, typer.Option("--nodes", help="Time mode: nodes to sample.")] = 64,
    load: Annotated[float, typer.Option("--load", help="Time mode: offered GPU load.")] = 0.95,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per policy.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the curves into a PNG.", metavar="FILE")] = None,
    scheduler_config: Annotated[
        Path | None,
        typer.Option(
            "--scheduler-config", help="Time mode: weights for the tuxai policy (docs/scheduler.md).", metavar="FILE"
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Replay a cluster trace through the scheduler and compare policies."""
    from tuxai.cli.sim import run_sim

    code = _guard(
        lambda: run_sim(
            format_name=format_name,
            jobs=jobs,
            cluster=cluster,
            mode=mode,
            policies=policy,
            seed=seed,
            seeds=seeds,
            runtimes=runtimes,
            count=count,
            nodes=nodes,
            load=load,
            as_json=as_json,
            plot=plot,
            scheduler_config=scheduler_config,
        ),
        debug,
    )
    raise typer.Exit(code)


HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="The daemon's home: data, socket, logs (env TUXAI_HOME).", metavar="DIR"),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (docs/jobs.md).")]


@app.command()
def up(
    home: HomeOption = None,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", help="Schedule a simulated inventory (YAML).", metavar="FILE")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Run in the background; return once it answers.")] = False,
    tcp: Annotated[
        str | None, typer.Option("--tcp", help="Also listen on HOST:PORT, with the token in <home>/token.")
    ] = None,
    scheduler_config: Annotated[
        Path | None, typer.Option("--scheduler-config", help="Policy weights (docs/scheduler.md).", metavar="FILE")
    ] = None,
    cgroups: Annotated[
        str,
        typer.Option("--cgroups", help="limits: a cgroup for jobs with --mem (default); all: every job; off."),
    ] = "limits",
    metrics_addr: Annotated[
        str | None, typer.Option("--metrics-addr", help="Prometheus endpoint HOST:PORT (127.0.0.1:9465; port 0: any).")
    ] = None,
    telemetry_period: Annotated[float | None, typer.Option("--telemetry-period", help="Seconds per sample.")] = None,
    idle_after: Annotated[float | None, typer.Option("--idle-after", help="Seconds of idle GPUs: idle.")] = None,
    hung_after: Annotated[float | None, typer.Option("--hung-after", help="Seconds without progress: hung.")] = None,
    on_hung: Annotated[str | None, typer.Option("--on-hung", help="none, cancel or requeue a hung job.")] = None,
    grid_intensity: Annotated[
        float | None, typer.Option("--grid-intensity", help="Grid carbon intensity, gCO2e/kWh (475).")
    ] = None,
    pue: Annotated[float | None, typer.Option("--pue", help="Power usage effectiveness of the room (1.0).")] = None,
    debug: DebugOption = False,
) -> None:
    """Start the daemon (foreground; --detach for the background)."""
    from tuxai.cli.jobs import daemon_argv, home_dir, run_up

    def action() -> int:
        where = home_dir(home)
        argv = daemon_argv(where, inventory, tcp, scheduler_config, cgroups)
        for flag, value in (
            ("--metrics-addr", metrics_addr),
            ("--telemetry-period", telemetry_period),
            ("--idle-after", idle_after),
            ("--hung-after", hung_after),
            ("--on-hung", on_hung),
            ("--grid-intensity", grid_intensity),
            ("--pue", pue),
        ):
            if value is not None:
                argv += [flag, str(value)]
        return run_up(argv, where, detach)

    raise typer.Exit(_guard(action, debug))


@app.command()
def down(home: HomeOption = None, debug: DebugOption = False) -> None:
    """Stop the daemon; running jobs go on and are adopted by the next `tuxai up`."""
    from tuxai.cli.jobs import home_dir, run_down

    raise typer.Exit(_guard(lambda: run_down(home_dir(home)), debug))


@app.command(context_settings={"allow_interspersed_args": False})
def submit(
    command: Annotated[list[str] | None, typer.Argument(help="The command, after --.", metavar="-- COMMAND")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="A YAML job file.", metavar="FILE")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="A name for the job.")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", "-g", help="Whole GPUs.")] = None,
    gpu_share: Annotated[
        float | None, typer.Option("--gpu-share", help="A slice of one GPU (0-1], with MPS.")
    ] = None,
    gpu_mem: Annotated[str | None, typer.Option("--gpu-mem", help="GPU memory for a slice: 10GiB.")] = None,
    mig: Annotated[str | None, typer.Option("--mig", help="MIG profile: 1g.10gb (with --gpus N instances).")] = None,
    gpu_type: Annotated[str | None, typer.Option("--gpu-type", help="Allowed models: A100|H100.")] = None,
    cpus: Annotated[int | None, typer.Option("--cpus", "-c", help="CPUs (pinned, NUMA-local to the GPUs).")] = None,
    mem: Annotated[str | None, typer.Option("--mem", help="Memory limit: 32GiB (cgroup).")] = None,
    time_limit: Annotated[str | None, typer.Option("--time", "-t", help="Time limit: 90s, 30m, 4h, 1:30:00.")] = None,
    grace: Annotated[str | None, typer.Option("--grace", help="SIGTERM → SIGKILL grace (default 60s).")] = None,
    priority: Annotated[int | None, typer.Option("--priority", help="0-100 (default 0).")] = None,
    retries: Annotated[int | None, typer.Option("--retries", help="Restart a failed job up to N times.")] = None,
    retry_backoff: Annotated[
        str | None, typer.Option("--retry-backoff", help="First retry delay, doubled each time (default 5s).")
    ] = None,
    no_requeue: Annotated[
        bool, typer.Option("--no-requeue", help="A preempted job ends as preempted instead of requeued.")
    ] = False,
    preemptible: Annotated[bool, typer.Option("--preemptible", help="Higher-priority jobs may preempt it.")] = False,
    workdir: Annotated[str | None, typer.Option("--workdir", "-w", help="Working directory (default: here).")] = None,
    export: Annotated[
        list[str] | None, typer.Option("--export", "-e", help="VAR=value for the job (repeatable).")
    ] = None,
    env: Annotated[
        str | None,
        typer.Option("--env", help="requirements.txt, a project dir or a venv: the job's Python environment."),
    ] = None,
    hold: Annotated[bool, typer.Option("--hold", help="Submit held (`tuxai release` lets it start).")] = False,
    serve_repo: Annotated[
        Path | None,
        typer.Option("--serve", help="Run `tuxai serve` on this model or repository as the job.", metavar="REPO"),
    ] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Queue a job: tuxai submit --gpus 2 -- python train.py."""
    from tuxai.cli.jobs import build_spec, home_dir, run_submit
    from tuxai.errors import UsageError

    def action() -> int:
        flags: dict[str, object] = {
            "name": name,
            "gpus": gpus,
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
        }
        if serve_repo is not None:
            from tuxai.cli.jobs import serve_command

            if command:
                raise UsageError("--serve runs the model server: give no command after --", hint="drop the command")
            command_words = serve_command(serve_repo)
            flags["name"] = flags["name"] or f"serve-{serve_repo.resolve().name}"
            flags["retries"] = 3 if flags["retries"] is None else flags["retries"]
        else:
            command_words = list(command or [])
        spec = build_spec(file, flags, command_words)
        where = home_dir(home)

        def build_env(source: str) -> str:
            from tuxai.envs import ensure_env

            return str(ensure_env(source, where / "envs"))

        return run_submit(where, spec, build_env, as_json)

    raise typer.Exit(_guard(action, debug))


@app.command(name="ls")
def list_jobs(
    everything: Annotated[bool, typer.Option("--all", "-a", help="Finished jobs too.")] = False,
    state: Annotated[list[str] | None, typer.Option("--state", help="Only these states (repeatable).")] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """The queue: state, user, GPUs, waited, ran, and why a job waits."""
    from tuxai.cli.jobs import run_ls

    raise typer.Exit(_guard(lambda: run_ls(home, everything, list(state or []), as_json), debug))


@app.command()
def show(
    job: Annotated[int, typer.Argument(help="The job id.")],
    as_json: JsonOption = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """One job in full, with its history."""
    from tuxai.cli.jobs import run_show

    raise typer.Exit(_guard(lambda: run_show(home, job, as_json), debug))


@app.command()
def logs(
    job: Annotated[int, typer.Argument(help="The job id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """A job's output (stdout and stderr)."""
    from tuxai.cli.jobs import run_logs

    raise typer.Exit(_guard(lambda: run_logs(home, job, follow), debug))


JobIds = Annotated[list[int], typer.Argument(help="Job ids.")]


@app.command()
def cancel(jobs: JobIds, home: HomeOption = None, debug: DebugOption = False) -> None:
    """Cancel jobs (running ones get SIGTERM, their grace period, then SIGKILL)."""
    from tuxai.cli.jobs import run_each

    raise typer.Exit(_guard(lambda: run_each(home, "cancel", jobs), debug))


@app.command()
def hold(jobs: JobIds, home: HomeOption = None, debug: DebugOption = False) -> None:
    """Keep pending jobs from starting."""
    from tuxai.cli.jobs import run_each

    raise typer.Exit(_guard(lambda: run_each(home, "hold", jobs), debug))


@app.command()
def release(jobs: JobIds, home: HomeOption = None, debug: DebugOption = False) -> None:
    """Let held jobs start."""
    from tuxai.cli.jobs import run_each

    raise typer.Exit(_guard(lambda: run_each(home, "release", jobs), debug))


@app.command()
def gpus(as_json: JsonOption = False, home: HomeOption = None, debug: DebugOption = False) -> None:
    """Who holds which GPU."""
    from tuxai.cli.jobs import run_gpus

    raise typer.Exit(_guard(lambda: run_gpus(home, as_json), debug))


@app.command()
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

    raise typer.Exit(_guard(action, debug))


@app.command()
def status(as_json: JsonOption = False, home: HomeOption = None, debug: DebugOption = False) -> None:
    """The daemon: pid, home, machine, cgroups, telemetry and the Prometheus address."""
    from tuxai.cli.jobs import client

    def action() -> int:
        with client(home) as api:
            health = api.health()
        if as_json:
            print(json.dumps(health, indent=2))
            return 0
        rows = [
            ("daemon", f"pid {health['pid']}, tuxai {health['version']}"),
            ("home", health["home"]),
            ("machine", f"{health['gpus']} GPUs, {health['cpus']} CPUs ({health['inventory']})"),
            ("cgroups", f"v{health['cgroups']}" if health["cgroups"] else f"off: {health['cgroups_problem']}"),
            ("telemetry", f"GPUs by {health['sampler']}, CPU energy by {health['cpu_energy']}"),
            *([("", health["cpu_energy_problem"])] if health.get("cpu_energy_problem") else []),
            ("prometheus", f"http://{health['metrics']}/metrics" if health["metrics"] else "not on TCP"),
        ]
        for key, value in rows:
            print(f"{key:>10}  {value}")
        return 0

    raise typer.Exit(_guard(action, debug))


@app.command()
def serve(
    target: Annotated[Path, typer.Argument(help="A model file (.onnx, .pt) or a model repository.", metavar="MODEL")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one).")] = 8000,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="Bearer token file (required off loopback).")
    ] = None,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", help="Largest merged batch.")] = 64,
    max_queue_delay_ms: Annotated[
        float, typer.Option("--max-queue-delay-ms", help="Extra wait for a fuller batch, only when others wait.")
    ] = 0.0,
    instances: Annotated[int, typer.Option("--instances", help="Concurrent model runs per version.")] = 1,
    threads: Annotated[int, typer.Option("--threads", help="ONNX Runtime threads per instance (0: default).")] = 0,
    no_watch: Annotated[bool, typer.Option("--no-watch", help="Do not pick up new version directories.")] = False,
    endpoint_file: Annotated[
        Path | None, typer.Option("--endpoint-file", help="Write the URL here once serving.", metavar="FILE")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Serve ONNX, PyTorch and TensorFlow models over the Open Inference Protocol (KServe v2)."""
    from tuxai.serving.repository import ModelConfig
    from tuxai.serving.server import ServeOptions, run_server

    def action() -> int:
        if max_batch_size < 1 or instances < 1 or max_queue_delay_ms < 0 or not 0 <= port < 65536:
            from tuxai.errors import UsageError

            raise UsageError(
                "--max-batch-size and --instances must be ≥ 1, --max-queue-delay-ms ≥ 0, --port 0-65535",
                hint="see `tuxai serve --help`",
            )
        defaults = ModelConfig(
            max_batch_size=max_batch_size, max_queue_delay_ms=max_queue_delay_ms, instances=instances, threads=threads
        )
        options = ServeOptions(target, host, port, token_file, defaults, not no_watch, endpoint_file)
        return run_server(options)

    raise typer.Exit(_guard(action, debug))


env_app = typer.Typer(help="Job environments: build once, name, list.", no_args_is_help=True)
app.add_typer(env_app, name="env")


@env_app.command("create")
def env_create(
    name: Annotated[str, typer.Argument(help="The name jobs will use: --env NAME.")],
    source: Annotated[str, typer.Argument(help="requirements.txt, a project directory, or a venv.")],
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Build (or reuse) the environment of SOURCE and call it NAME."""
    from tuxai.cli.jobs import home_dir
    from tuxai.envs import ensure_env, name_env

    def action() -> int:
        cache = home_dir(home) / "envs"
        target = ensure_env(source, cache)
        print(f"environment {name}: {name_env(name, target, cache)} → {target}")
        return 0

    raise typer.Exit(_guard(action, debug))


@env_app.command("ls")
def env_list(as_json: JsonOption = False, home: HomeOption = None, debug: DebugOption = False) -> None:
    """The built environments, what they were built from, and their names."""
    from tuxai.cli.jobs import home_dir
    from tuxai.envs import list_envs

    def action() -> int:
        envs = list_envs(home_dir(home) / "envs")
        if as_json:
            print(json.dumps(envs, indent=2))
        else:
            for env in envs:
                print(f"{env['names'] or '-':<16} {env['path']}  (from {env['source']})")
            if not envs:
                print("no environments built yet (tuxai submit --env FILE or tuxai env create NAME FILE)")
        return 0

    raise typer.Exit(_guard(action, debug))


def _guard(action: Callable[[], int], debug: bool) -> int:
    """Run a command body; a ``TuxaiError`` becomes one line on stderr and exit 2."""
    try:
        result: int = action()
        return result
    except TuxaiError as exc:
        if debug:
            raise
        # One line, never wrapped: scripts and people both read it.
        print(f"error: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return EXIT_USAGE


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
