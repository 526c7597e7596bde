"""Every flag the docs give a tuxai command exists on that command: `tuxai up --watts-per-cpu`
in docs/telemetry.md once named a flag only the daemon had. Commands are read from code blocks
and `inline code` in README.md and docs/*.md; the CLI's own tree (Typer) and the daemon's
parser say what exists."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import typer.main

from tuxai.api.server import parser
from tuxai.cli.main import app
from tuxai.model.mapping import declared_fields
from tuxai.settings import DaemonSettings

REPO = Path(__file__).parent.parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```.*?$(.*?)^```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`]+)`")
_FLAG = re.compile(r"^--[a-z][a-z0-9-]*")
_ENDS = {"--", "#", "|", "||", "&&", ";", "/", "or", "and"}  # what ends a command's own words


@functools.cache
def _tree() -> tuple[Any, frozenset[str]]:
    """The CLI's command tree and the daemon's flags, built once."""
    daemon = frozenset(flag for action in parser()._actions for flag in action.option_strings)
    return typer.main.get_command(app), daemon


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _texts(markdown: str) -> list[str]:
    """The command-bearing texts of a page: each code block line (continuations joined), each code span."""
    texts: list[str] = []
    for block in _FENCE.findall(markdown):
        texts += block.replace("\\\n", " ").splitlines()
    prose = _FENCE.sub("", markdown)
    texts += [span.replace("\n", " ") for span in _SPAN.findall(prose)]
    return texts


def problems(text: str, where: str, checked: list[str] | None = None) -> list[str]:
    """``where: tuxai up --flag: no such option`` for each flag ``text`` gives a command that lacks it
    (``checked`` collects every flag looked at)."""
    root, daemon = _tree()
    found = []
    words = text.split()
    for start, word in enumerate(words):
        if word == "tuxai":
            node, path, rest = root, ["tuxai"], words[start + 1 :]
            while rest and rest[0] in getattr(node, "commands", {}):
                node = node.commands[rest[0]]  # type: ignore[attr-defined]
                path.append(rest[0])
                rest = rest[1:]
            known = _options(node) | {"--help"}
        elif word == "tuxai.api.server":
            path, rest, known = ["python -m tuxai.api.server"], words[start + 1 :], daemon | {"--help"}
        else:
            continue
        for token in rest:
            if token in _ENDS or token.startswith("#") or token in ("tuxai", "python"):
                break
            flag = _FLAG.match(token)
            if flag and checked is not None:
                checked.append(f"{' '.join(path)} {flag.group()}")
            if flag and flag.group() not in known:
                found.append(f"{where}: {' '.join(path)} {flag.group()}: no such option")
    return found


def test_every_flag_the_docs_give_a_command_exists() -> None:
    found: list[str] = []
    checked: list[str] = []
    for page in DOCS:
        for text in _texts(page.read_text()):
            found += problems(text, page.relative_to(REPO).as_posix(), checked)
    assert found == []
    assert len(set(checked)) > 30 and "tuxai up --job-pids-max" in checked  # the pages were read


def test_the_check_finds_a_flag_that_does_not_exist() -> None:
    page = "Start it:\n\n```sh\ntuxai up --detach --no-such-flag  # here\n```\n\nor `tuxai submit --gpuz 2 -- x`."
    found = [p for text in _texts(page) for p in problems(text, "page.md")]
    assert found == ["page.md: tuxai up --no-such-flag: no such option", "page.md: tuxai submit --gpuz: no such option"]
    assert problems("tuxai submit -- python train.py --epochs 3", "x") == []  # the job's own words
    assert problems("tuxai env create --nope", "x") == ["x: tuxai env create --nope: no such option"]
    assert problems("python -m tuxai.api.server --watts-per-cpu 12 --bogus", "x") == [
        "x: python -m tuxai.api.server --bogus: no such option"
    ]


def test_the_settings_table_of_docs_jobs_is_the_declaration() -> None:
    rows = re.findall(r"^\| `(--[a-z-]+)`[^|]*\| `([a-z_]+)` \|", (REPO / "docs" / "jobs.md").read_text(), re.MULTILINE)
    assert rows == [(d.flag, d.key) for d in declared_fields(DaemonSettings)]
