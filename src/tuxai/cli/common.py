"""What every command shares: the one-line error guard, the common options, the daemon to talk to."""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tuxai.errors import TuxaiError
from tuxai.settings import HOME_HELP

if TYPE_CHECKING:
    from tuxai.api.client import Client

EXIT_USAGE = 2
_DEBUG = contextvars.ContextVar("debug", default=False)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help=HOME_HELP,
        metavar="DIR",
        readable=False,  # a root daemon's home is 0711: users reach its socket but cannot list it
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks and which daemon is asked.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (docs/jobs.md).")]


def daemon_client(home: Path | None) -> Client:
    """The SDK client of the daemon the user means (``Client.discover``); ``--debug`` says which on stderr."""
    from tuxai.api.client import Client

    client = Client.discover(home)
    if _DEBUG.get():
        print(f"debug: {client.describe()}", file=sys.stderr)
    return client


def daemon_home(home: Path | None) -> Path:
    """The home of the daemon the user means (``--home``; else theirs if it runs, else the system's): its envs."""
    from tuxai.api.client import Client

    given = home.expanduser().resolve() if home is not None else None
    with Client.discover(given) as client:
        return client.home or Path(client.where).parent


def guard(action: Callable[[], int], debug: bool) -> int:
    """Run a command body; a ``TuxaiError`` becomes one line on stderr and exit 2."""
    _DEBUG.set(debug)
    try:
        result: int = action()
        return result
    except TuxaiError as exc:
        if debug:
            raise
        # One line, never wrapped: scripts and people both read it.
        print(f"error: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return EXIT_USAGE
