"""What ``--help`` names an option's value: words people read (``--gpus N``, ``--time DURATION``),
never the Python type Typer would print (``<int>``, ``<str>``, ``<list[str]>``, ``INTEGER``).

An option declared with ``metavar=`` keeps it; any other takes its long flag's name, as argparse
does (``--host HOST``); a flag (``--json``, ``--help``) shows none; an argument shows its name
only. Applied once to the whole command tree (``tuxai.cli.main.run``), so a command added later
reads the same.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperOption


def _no_type(ctx: object) -> None:
    """An argument's type column: none (its name already says what it takes)."""
    return None


def readable_metavars(command: Any) -> Any:
    """Give every option of ``command`` (a Typer command or group) and of its subcommands a readable
    metavar; ``command`` back."""
    helper = command.get_help_option(typer.Context(command))  # made on first use: make it now
    for param in [*command.params, *([helper] if helper is not None else [])]:
        if isinstance(param, TyperArgument):
            param.metavar = param.metavar or str(param.name).upper()
            setattr(param, "display_type_rich", _no_type)  # noqa: B010 - Typer prints the Python type otherwise
        elif isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag or param.count else _from_flag(param)
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
    return command


def _from_flag(option: TyperOption) -> str:
    """``--gpu-type`` → ``GPU_TYPE``; an option with no long flag: its parameter's name."""
    long = [opt for opt in option.opts if opt.startswith("--")]
    return (long[0][2:] if long else str(option.name)).replace("-", "_").upper()
