"""``tuxai pipeline run/ls/show``: pipelines of jobs that cache (docs/lifecycle.md).

The bodies call ``tuxai.lifecycle``; the records are the user's own (``records.pipelines_dir``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tuxai.cli.common import DebugOption, HomeOption, JsonOption, guard

if TYPE_CHECKING:
    from collections.abc import Callable

    from tuxai.api.client import Client
    from tuxai.lifecycle.dag import Pipeline
    from tuxai.lifecycle.records import Records, RunRecord

pipeline_app = typer.Typer(help="Pipelines: named steps as jobs, cached by content (docs/lifecycle.md).")


def _say(text: str) -> None:
    print(_text(text), file=sys.stderr, flush=True)


@pipeline_app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="The pipeline: YAML, or a .py module's PIPELINE.", metavar="FILE")],
    resume: Annotated[
        bool, typer.Option("--resume", help="Go on with this file's last run: keep what is done.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what is cached and what would run.")] = False,
    home: HomeOption = None,
    debug: DebugOption = False,
) -> None:
    """Run a pipeline: cached steps reused, the others submitted as your jobs in DAG order."""

    def action() -> int:
        from tuxai.lifecycle.dag import load_pipeline
        from tuxai.lifecycle.records import Records, pipelines_dir
        from tuxai.lifecycle.runner import Runner, RunOptions

        pipeline = load_pipeline(file)
        records = Records(pipelines_dir())
        from tuxai.lifecycle.mlflow_runs import Tracker, tracking_available

        tracker = Tracker if tracking_available() else None  # each step an MLflow run when the extra is there
        options = RunOptions(resume=resume, dry_run=dry_run, prepare_env=_env_builder(home), tracker=tracker)
        runner = Runner(pipeline, records, lambda: _client(home), _say)
        try:
            done = runner.run(options)
        except KeyboardInterrupt:
            _say(f"stopped waiting; the jobs go on: `tuxai pipeline run --resume {file}` picks them up")
            return 130
        finally:
            runner.close()
        if dry_run:
            return 0
        print(render_run(done, pipeline_depths(pipeline)))
        if done.state != "succeeded":
            _say(f"run {done.id} failed: fix the step and `tuxai pipeline run --resume {file}` goes on from it")
            return 1
        return 0

    raise typer.Exit(guard(action, debug))


@pipeline_app.command("ls")
def ls(as_json: JsonOption = False, debug: DebugOption = False) -> None:
    """List your pipeline runs, oldest first."""

    def action() -> int:
        from tuxai.lifecycle.records import Records, pipelines_dir

        runs = Records(pipelines_dir()).runs()
        if as_json:
            print(json.dumps([dataclasses.asdict(r) for r in runs], indent=2, sort_keys=True))
            return 0
        print(f"{'RUN':>4}  {'PIPELINE':<20} {'STATE':<10} {'STEPS':<24} {'STARTED':<19} TOOK")
        for r in runs:
            counts = {s: sum(1 for x in r.steps if x.state == s) for s in ("succeeded", "cached")}
            other = len(r.steps) - sum(counts.values())
            steps = f"{counts['succeeded']} ran, {counts['cached']} cached" + (f", {other} not" if other else "")
            took = f"{r.ended_at - r.started_at:.1f} s" if r.ended_at else "-"
            print(f"{r.id:>4}  {_text(r.pipeline)[:20]:<20} {r.state:<10} {steps:<24} {_when(r.started_at)} {took}")
        return 0

    raise typer.Exit(guard(action, debug))


@pipeline_app.command("show")
def show(
    run_id: Annotated[int, typer.Argument(help="The run's number (tuxai pipeline ls).", metavar="RUN")],
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """A run's DAG with each step's state, time, GPU-hours and energy, and its outputs' lineage."""

    def action() -> int:
        from tuxai.lifecycle.records import Records, pipelines_dir

        records = Records(pipelines_dir())
        found = records.load(run_id)
        if as_json:
            lineage = {d: records.lineage(d) for s in found.steps for d in s.outputs.values()}
            print(json.dumps({**dataclasses.asdict(found), "lineage": lineage}, indent=2, sort_keys=True))
            return 0
        print(render_run(found, _recorded_depths(found), records))
        return 0

    raise typer.Exit(guard(action, debug))


def _client(home: Path | None) -> Client:
    from tuxai.cli.jobs import client

    return client(home)


def _env_builder(home: Path | None) -> Callable[[str], str]:
    """A step's ``env:`` built as ``tuxai submit`` builds it (``tuxai.envs.ensure_env``), on first use."""

    def build(source: str) -> str:
        import os

        from tuxai.cli.common import daemon_home
        from tuxai.envs import ensure_env, user_cache
        from tuxai.envs.cache import record_use

        shared = daemon_home(home) / "envs"
        built = ensure_env(source, user_cache(shared, os.environ), shared=(shared,))
        record_use(built)
        return str(built)

    return build


def pipeline_depths(pipeline: Pipeline) -> dict[str, tuple[int, tuple[str, ...]]]:
    """Each step's depth in the DAG and its needs, from a loaded pipeline."""
    from tuxai.lifecycle.dag import depths

    found = depths(pipeline)
    return {s.name: (found[s.name], s.needs) for s in pipeline.steps}


def _recorded_depths(run: RunRecord) -> dict[str, tuple[int, tuple[str, ...]]]:
    """The DAG of a recorded run: read again from its file if it still loads, else flat."""
    from tuxai.errors import TuxaiError
    from tuxai.lifecycle.dag import load_pipeline

    try:
        return pipeline_depths(load_pipeline(Path(run.source)))
    except TuxaiError:
        return {s.name: (0, ()) for s in run.steps}


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _text(value: object) -> str:
    """Users' text (names, reasons) as a terminal may show it: what is not printable escaped, as
    ``cli.jobs.printable`` does (not imported: it loads the SDK, which a cached run does without)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(value))


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def render_run(run: RunRecord, dag: dict[str, tuple[int, tuple[str, ...]]], records: Records | None = None) -> str:
    """A run as text: a head line, then the DAG one step a line (indented by depth, ``← needs``) with
    state, job, time, GPU-hours and energy; with ``records``, each output's hash and what made it."""
    took = f", took {run.ended_at - run.started_at:.1f} s" if run.ended_at else ""
    lines = [f"run {run.id} · pipeline {_text(run.pipeline)} · {run.state} · {_when(run.started_at)}{took}"]
    lines.append(f"  {'STEP':<28} {'STATE':<22} {'JOB':>5} {'TIME':>8} {'GPU-H':>8} {'kWh':>9}  NEEDS")
    for step in run.steps:
        depth, needs = dag.get(step.name, (0, ()))
        name = ("  " * depth + ("└ " if depth else "") + step.name)[:28]
        state = f"cached from run {step.cached_from}" if step.state == "cached" else step.state
        time_s = "-" if step.state == "cached" else _number(step.ran_s, ".1f") + (" s" if step.ran_s else "")
        cost = (None, None) if step.state == "cached" else (step.gpu_hours, step.energy_kwh)
        lines.append(
            f"  {name:<28} {state:<22} {step.job or '-':>5} {time_s:>8} {_number(cost[0], '.4f'):>8} "
            f"{_number(cost[1], '.6f'):>9}  {'← ' + ', '.join(needs) if needs else ''}"
        )
        if step.reason and step.state not in ("succeeded", "cached"):
            lines.append(f"  {'':<28} {_text(step.reason)}")
        if records is not None:
            for output, digest in step.outputs.items():
                made = records.lineage(digest)
                lines.append(
                    f"  {'':<28} output {output}: {digest[:12]} made by run {made.get('run')} step {made.get('step')}"
                    f" (job {made.get('job')}), code {str(made.get('code_hash'))[:12]}"
                    f" ({made.get('code_rule')}), env {str(made.get('env_hash'))[:12] or '-'}, inputs "
                    + (", ".join(f"{k}={str(v)[:12]}" for k, v in dict(made.get("inputs") or {}).items()) or "-")
                )
    return "\n".join(lines)
