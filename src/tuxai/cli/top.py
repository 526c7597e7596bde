"""``tuxai top``: a live view of every GPU (utilization, memory, power), the job and user on it —
each MIG instance and slice, and what runs outside tuxai — and the queue beneath, at any terminal
size (``top_layout``). Job-aware nvitop.

Keys: ``↑``/``↓`` (or ``k``/``j``) select a job, ``c`` cancels it after a ``y`` (the daemon
decides: another user's job answers with its refusal, shown at the bottom), ``s`` cycles the GPU
sort (gpu, util, memory, user), ``u`` shows the users panel instead of the queue, ``q`` quits.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator

from rich.console import Console, Group
from rich.live import Live

from tuxai.api.client import Client
from tuxai.cli.states import state_words
from tuxai.cli.top_layout import SORTS, TopState, frame
from tuxai.errors import TuxaiError
from tuxai.model.job import JobState

UP = ("\x1b[A", "\x1bOA", "k")
DOWN = ("\x1b[B", "\x1bOB", "j")


def render(client: Client, state: TopState, size: tuple[int, int]) -> Group:
    """One frame for a terminal of ``size`` (columns, lines)."""
    live = client.telemetry()
    gpus = client.gpus()
    jobs = client.jobs([JobState.RUNNING, JobState.PENDING, JobState.REQUEUED])
    return Group(*frame(live, gpus, jobs, state, size, time.strftime("%H:%M:%S")))


def press(client: Client, state: TopState, key: str) -> bool:
    """Act on one key (or escape sequence); False to quit."""
    if state.confirm is not None:
        job_id, state.confirm = state.confirm, None
        if key not in ("y", "Y"):
            state.message = f"job {job_id} kept"
            return True
        try:
            job = client.cancel(job_id)
            state.message = f"job {job_id}: {state_words(job.state, job.reason)}"
        except TuxaiError as exc:  # the daemon's rules: another user's job, one that already ended
            state.message = f"job {job_id} not cancelled: {exc.message}"
        return True
    state.message = ""
    if key in ("q", "Q"):
        return False
    if key == "s":
        state.sort = SORTS[(SORTS.index(state.sort) + 1) % len(SORTS)]
    elif key == "u":
        state.users = not state.users
    elif key in UP or key in DOWN:
        _move(state, -1 if key in UP else 1)
    elif key == "c":
        if state.selected is None:
            state.message = "select a job first (↑↓)"
        else:
            state.confirm = state.selected
            state.message = f"cancel job {state.selected}? y cancels it, any other key keeps it"
    return True


def _move(state: TopState, step: int) -> None:
    if not state.order:
        state.selected = None
        return
    if state.selected not in state.order:
        state.selected = state.order[0 if step > 0 else -1]
        return
    position = state.order.index(state.selected) + step
    state.selected = state.order[max(0, min(len(state.order) - 1, position))]


def split_keys(typed: str) -> list[str]:
    """What the terminal sent, key by key: ``"u\x1b[Bc"`` → ``["u", "\x1b[B", "c"]`` (an arrow is one key)."""
    found: list[str] = []
    rest = typed
    while rest:
        size = 3 if rest[0] == "\x1b" and rest[1:2] in ("[", "O") and len(rest) >= 3 else 1
        found.append(rest[:size])
        rest = rest[size:]
    return found


def _keys(fd: int) -> list[str]:
    return split_keys(os.read(fd, 64).decode(errors="replace"))


@contextlib.contextmanager
def keys() -> Iterator[int | None]:
    """Single keypresses from the terminal (cbreak), restored on the way out."""
    if not sys.stdin.isatty():
        yield None
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_top(client: Client, interval_s: float = 1.0, once: bool = False) -> int:
    """Refresh every ``interval_s`` until ``q`` (or after one frame with ``once``)."""
    console = Console()
    state = TopState()
    if once:
        console.print(render(client, state, (console.width, 1000)))
        return 0
    with (
        keys() as fd,
        Live(render(client, state, console.size), console=console, screen=True, auto_refresh=False) as screen,
    ):
        while True:
            if fd is None:
                time.sleep(interval_s)
            elif select.select([fd], [], [], interval_s)[0] and not all(press(client, state, k) for k in _keys(fd)):
                return 0
            screen.update(render(client, state, console.size), refresh=True)
