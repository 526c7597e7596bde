"""``tuxai``: the Typer application and its error handling."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Annotated

import typer

from tuxai import __version__
from tuxai.cli.common import DebugOption, HomeOption, LogLevelOption, guard, start_logging
from tuxai.cli.drift import drift
from tuxai.cli.envs import env_app
from tuxai.cli.export import export_app
from tuxai.cli.images import image_app
from tuxai.cli.job_commands import jobs_app
from tuxai.cli.mlflow_ui import mlflow_app
from tuxai.cli.pipeline import pipeline_app
from tuxai.errors import UsageError

app = typer.Typer(
    name="tuxai",
    help="Make this Linux machine a good home for AI work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
        str | None, typer.Option("--python", help="Interpreter whose frameworks to probe.", metavar="PYTHON")
    ] = None,
    env: Annotated[
        str | None,
        typer.Option("--env", help="Probe the frameworks of a job environment (a name, or a venv).", metavar="ENV"),
    ] = None,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Report what this machine really has and what hurts ML work on it.

    Exit status: 0 without error findings, 1 with, 2 on usage errors.
    """
    from tuxai.cli.doctor import run_doctor

    def action() -> int:
        interpreter = python
        if env is not None:  # a job environment's frameworks: its own python's
            from tuxai.cli.envs import env_python

            if python is not None:
                raise UsageError("--env and --python cannot be used together", hint="--env ENV probes ENV's python")
            interpreter = env_python(env, home)
        return run_doctor(
            as_json=as_json,
            frameworks=not no_frameworks or env is not None,
            inventory=inventory,
            record=record,
            replay=replay,
            python=interpreter,
        )

    code = guard(action, debug)
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
    debug: DebugOption = False,
) -> None:
    """Replay a cluster trace through the scheduler and compare policies."""
    from tuxai.cli.sim import run_sim

    code = guard(
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


@app.command()
def serve(
    target: Annotated[
        Path, typer.Argument(help="A model file (.onnx, .pt), a repository, or models:/NAME@ALIAS.", metavar="MODEL")
    ],
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
    max_body: Annotated[str, typer.Option("--max-body", help="Largest request body (413 past it).")] = "64MiB",
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Stay up when no model loaded (else exit 2, saying why).")
    ] = False,
    image: Annotated[
        str | None, typer.Option("--image", help="Serve as a job in this OCI image (docs/containers.md).")
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", help="With --image: the job's GPUs.", metavar="N")] = 0,
    home: HomeOption = None,
    log_level: LogLevelOption = None,
    debug: DebugOption = False,
) -> None:
    """Serve ONNX, PyTorch and TensorFlow models over the Open Inference Protocol (KServe v2)."""
    if image is not None:  # the server as a job in the image, attached (cli.serve_image)
        from tuxai.cli.serve_image import serve_in_image

        fixed = {"--host": host != "127.0.0.1", "--port": port != 8000, "--token-file": token_file,
                 "--endpoint-file": endpoint_file}  # fmt: skip
        raise typer.Exit(guard(lambda: serve_in_image(target, image, gpus, home, fixed), debug))
    from tuxai.serving.repository import ModelConfig
    from tuxai.serving.server import ServeOptions, run_server

    def action() -> int:
        from tuxai.errors import UsageError
        from tuxai.model.units import parse_bytes

        start_logging(log_level)
        try:
            max_body_bytes = parse_bytes(max_body)
        except ValueError as exc:
            raise UsageError(f"--max-body: {exc}", hint="e.g. --max-body 64MiB") from None
        if max_batch_size < 1 or instances < 1 or max_queue_delay_ms < 0 or not 0 <= port < 65536 or max_body_bytes < 1:
            raise UsageError(
                "--max-batch-size, --instances and --max-body must be ≥ 1, --max-queue-delay-ms ≥ 0, --port 0-65535",
                hint="see `tuxai serve --help`",
            )
        defaults = ModelConfig(
            max_batch_size=max_batch_size, max_queue_delay_ms=max_queue_delay_ms, instances=instances, threads=threads
        )
        options = ServeOptions(target, host, port, token_file, defaults, not no_watch, endpoint_file, max_body_bytes,
                               allow_empty)  # fmt: skip
        if str(target).startswith("models:/"):  # the registry's alias, followed (docs/lifecycle.md)
            from tuxai.cli.serve_alias import serve_alias

            return serve_alias(str(target), options)
        return run_server(options)

    raise typer.Exit(guard(action, debug))


@app.command()
def infer(
    model: Annotated[str, typer.Argument(help="The model's name (`GET /v2/models` lists them).", metavar="MODEL")],
    inputs: Annotated[
        list[str],
        typer.Option(
            "--input", "-i", help="NAME=@file.npy or NAME=JSON (a number or nested lists); one per input.",
            metavar="NAME=@FILE|NAME=JSON",
        ),
    ],
    version: Annotated[
        str | None, typer.Option("--version", help="A version (default: the newest ready).", metavar="V")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="The server (default http://127.0.0.1:8000).", metavar="URL")
    ] = None,
    job: Annotated[
        int | None, typer.Option("--job", help="A model served as job JOB (`submit --serve`).", metavar="JOB")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="Bearer token file, as the server's.", metavar="FILE")
    ] = None,
    outputs: Annotated[
        list[str] | None, typer.Option("--output", "-o", help="Only this output (repeat for more).", metavar="NAME")
    ] = None,
    binary: Annotated[
        bool, typer.Option("--binary", help="Send and receive binary tensors (Triton's extension).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer as KServe's JSON (binary decoded).")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the answer.", metavar="S")] = 60.0,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Ask a served model once (KServe v2) and print its outputs (docs/serving.md)."""
    from tuxai.cli.infer import InferOptions, run_infer

    options = InferOptions(model, tuple(inputs), version, url, job, home, token_file, tuple(outputs or ()), binary,
                           as_json, timeout)  # fmt: skip
    raise typer.Exit(guard(lambda: run_infer(options), debug))


# The daemon's commands live in their own module of declarations.
app.add_typer(jobs_app)
app.add_typer(env_app, name="env")
app.add_typer(export_app, name="export")
app.add_typer(image_app, name="image")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(mlflow_app, name="mlflow")
app.command("drift")(drift)


def run() -> None:
    """Console-script entry point."""
    from tuxai.cli.metavars import readable_metavars

    try:
        readable_metavars(typer.main.get_command(app))()
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        gc.freeze()  # the process ends: exit's last collection over every imported object is ~0.3 s wasted
