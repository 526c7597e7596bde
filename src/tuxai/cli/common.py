"""What every command shares: the one-line error guard, the common options, the daemon to talk to."""

from __future__ import annotations

import contextvars
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tuxai.errors import ConfigError, TuxaiError
from tuxai.model.mapping import declared_fields, read_text_value
from tuxai.settings import ENV_PREFIX, HOME_HELP, DaemonSettings

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
_LOG_LEVEL = next(f for f in declared_fields(DaemonSettings) if f.key == "log_level")  # the daemon's, declared once
LogLevelOption = Annotated[
    str | None,
    typer.Option("--log-level", help=f"{_LOG_LEVEL.help()}; env TUXAI_LOG_LEVEL.", metavar=_LOG_LEVEL.metavar),
]


def start_logging(flag: str | None) -> None:
    """A server command's log (``tuxai serve``): at ``--log-level``, else ``$TUXAI_LOG_LEVEL``, else info.

    Raises:
        ConfigError: not a level (the flag or the variable named).
    """
    from tuxai.logs import configure_logging

    variable = _LOG_LEVEL.env(ENV_PREFIX)
    raw, source = (flag, _LOG_LEVEL.flag) if flag is not None else (os.environ.get(variable), variable)
    level = read_text_value(_LOG_LEVEL, raw, source, ConfigError) if raw else _LOG_LEVEL.default
    configure_logging(str(level))


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
