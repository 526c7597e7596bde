"""The queue as Slurm users read it: ``tuxai ls`` selected by ``--user``, ``--name`` (a glob),
``--mine`` and ``--limit`` (squeue's), ``--explain`` (sprio's terms and why each job waits, in the
order the scheduler considers them), a job's terms in ``tuxai show``, and the quotas in ``tuxai status``.

The numbers are the scheduler's own (``PublicJob.standing``, made by the daemon from the ranking
``decide`` used); nothing here computes a priority.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tuxai.errors import UsageError
from tuxai.model.job import JobState
from tuxai.model.wire import CapView, LimitsView, PublicJob, Standing

LABELS = {"priority": "PRIORITY", "fairshare": "FAIRSHARE", "age": "AGE", "size": "SIZE", "short": "TIMELIMIT"}
WORDS = {"priority": "job priority", "fairshare": "fair share", "age": "age", "size": "size", "short": "time limit"}


@dataclass(frozen=True)
class Selection:
    """Which jobs ``tuxai ls`` lists: a user's (``mine``: the caller's), names matching a glob, the first ``limit``."""

    user: str | None = None
    name: str | None = None
    limit: int | None = None
    mine: bool = False
    explain: bool = False

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise UsageError(f"--limit {self.limit}: a number of jobs, 0 or more", hint="e.g. --limit 20")


EVERY = Selection()  # no selection: every job the listing has


def me() -> str:
    """The caller's user name (as the daemon names it, from the uid)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def select(jobs: Sequence[PublicJob], selection: Selection) -> list[PublicJob]:
    """The jobs ``selection`` asks for, in the listing's order (``--explain``: the scheduler's), the first ``limit``."""
    user = me() if selection.mine else selection.user
    chosen = [
        job
        for job in jobs
        if (user is None or job.user == user)
        and (selection.name is None or fnmatch.fnmatchcase(job.name, selection.name))
    ]
    if selection.explain:
        chosen = decision_order(chosen)
    return chosen if selection.limit is None else chosen[: selection.limit]


def decision_order(jobs: Sequence[PublicJob]) -> list[PublicJob]:
    """Waiting jobs in the order the scheduler considered them at its last pass; those it did not
    consider (held, waiting on a dependency or a retry's backoff) after them, oldest first."""
    waiting = [j for j in jobs if j.state in (JobState.PENDING, JobState.REQUEUED)]
    ranked = sorted((j for j in waiting if j.standing is not None), key=lambda j: j.standing.rank if j.standing else 0)
    return ranked + [j for j in waiting if j.standing is None]


def _num(value: float) -> str:
    return f"{value:.1f}"


def print_explain(jobs: Sequence[PublicJob], now: float) -> int:
    """``tuxai ls --explain``: rank, each term (factor × weight), the total and the reason, per waiting job."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("RANK", "ID", "USER", "NAME", *LABELS.values(), "TOTAL", "START BY", "REASON"):
        table.add_column(column, no_wrap=column != "REASON", justify="right" if column in LABELS.values() else "left")
    for job in jobs:
        standing = job.standing
        terms = {t.name: _num(t.value) for t in standing.terms} if standing else {}
        rank = "-" if standing is None else f"{standing.rank}" + ("*" if standing.first else "")
        table.add_row(
            Text(rank),
            Text(str(job.id)),
            Text(job.user),
            Text(job.name[:24]),
            *(Text(terms.get(name, "-")) for name in LABELS),
            Text(_num(standing.total) if standing else "-"),
            Text(_start(standing, now)),
            Text(job.reason),
        )
    Console(width=220 if not sys.stdout.isatty() else None).print(table)
    if not jobs:
        print("no job waiting")
    elif any(j.standing is not None and j.standing.first for j in jobs):
        print("* goes first whatever its total: waited past starvation_s, or asks protect_gpus or more")
    return 0


def _start(standing: Standing | None, now: float) -> str:
    if standing is None or standing.expected_start is None:
        return "-"
    at = standing.expected_start
    return f"{time.strftime('%H:%M:%S', time.localtime(at))} (in {_span(at - now)})"


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _duration(seconds: float) -> str:
    """``7d``, ``24h``, ``90m`` when whole, else ``_span``'s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return _span(seconds)


def standing_rows(job: PublicJob, now: float) -> list[tuple[str, str]]:
    """``tuxai show``'s rows of the scheduler's numbers: the total as the sum of its terms, the rank, the start."""
    standing = job.standing
    if standing is None:
        return []
    terms = " + ".join(f"{WORDS[t.name]} {t.value:.1f} ({t.factor:.3f} × {t.weight:g})" for t in standing.terms)
    when = "when it started" if job.state is JobState.RUNNING else f"{_span(now - standing.at)} ago"
    rows = [
        ("priority", f"{standing.total:.1f} = {terms}"),
        (
            "rank",
            f"{standing.rank} in the queue {when}" + (" (goes first: starving or protected)" if standing.first else ""),
        ),
    ]
    if standing.expected_start is not None and job.state is not JobState.RUNNING:
        rows.append(("starts by", _start(standing, now) + ", if running jobs end at their time limits"))
    return rows


def limits_rows(view: LimitsView) -> list[tuple[str, str]]:
    """``tuxai status``'s rows (``limits`` first): each account's caps beside its use."""
    window = _duration(view.window_s)
    rows: list[tuple[str, str]] = []
    for account in view.accounts:
        who = account.who if account.kind == "user" else f"group {account.who}"
        caps = {c.name: c for c in account.caps}
        parts = [
            _part(f"{account.gpus_held:g}", "GPUs held", caps.get("max_gpus")),
            _part(f"{account.gpu_hours:.1f}", f"GPU-hours in {window}", caps.get("gpu_hours")),
            _part(str(account.pending), "waiting", caps.get("max_pending")),
        ]
        if "max_time" in caps:
            parts.append(f"time limit at most {_duration(caps['max_time'].limit)} ({caps['max_time'].path})")
        rows.append(("" if rows else "limits", f"{who}: " + "; ".join(parts)))
    return rows


def _part(used: str, what: str, cap: CapView | None) -> str:
    if cap is not None:
        return f"{used} of {cap.limit:g} {what} ({cap.path})"
    return f"{used} {what} (no cap)"
