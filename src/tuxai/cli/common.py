"""What every command shares: the one-line error guard and the common options."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from tuxai.errors import TuxaiError

EXIT_USAGE = 2

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="The daemon's home: data, socket, logs (env TUXAI_HOME).",
        metavar="DIR",
        readable=False,  # a root daemon's home is 0711: users reach its socket but cannot list it
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (docs/jobs.md).")]


def guard(action: Callable[[], int], debug: bool) -> int:
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
