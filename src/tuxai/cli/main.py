"""``tuxai``: the Typer application and its error handling."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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


def _guard(action: Callable[[], int], debug: bool) -> int:
    """Run a command body; a ``TuxaiError`` becomes one line on stderr and exit 2."""
    try:
        result: int = action()
        return result
    except TuxaiError as exc:
        if debug:
            raise
        Console(stderr=True, highlight=False).print(
            f"[bold red]error:[/] {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), markup=True
        )
        return EXIT_USAGE


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
