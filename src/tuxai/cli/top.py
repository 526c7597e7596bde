"""``tuxai top``: a live view of every GPU (utilization, memory, power), the job and user on it,
and the queue beneath. Job-aware nvitop. ``q`` quits."""

from __future__ import annotations

import contextlib
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tuxai.api.client import Client
from tuxai.cli.jobs import cell, printable
from tuxai.model.job import JobState
from tuxai.model.units import format_bytes
from tuxai.model.wire import LiveView, PublicJob

BAR = 20


def bar(fraction: float | None, width: int = BAR) -> Text:
    """``████████░░░░ 67%``, green → yellow → red."""
    if fraction is None:
        return Text("n/a".ljust(width + 5), style="dim")
    fraction = max(0.0, min(1.0, fraction))
    filled = round(fraction * width)
    style = "green" if fraction < 0.5 else "yellow" if fraction < 0.85 else "red"
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim") + Text(f" {fraction:4.0%}")


def _gpu_table(live: LiveView) -> Table:
    table = Table(title=f"GPUs ({live.sampler})", title_justify="left", box=None, header_style="bold")
    for column in ("GPU", "MODEL", "UTIL", "MEMORY", "POWER", "TEMP", "JOB / USER"):
        table.add_column(column, no_wrap=True)
    for gpu in live.gpus:
        memory = gpu.memory_used_bytes, gpu.memory_total_bytes
        power = gpu.power_w, gpu.power_limit_w
        holders = ", ".join(f"{h.job} {h.user}" + (f" {h.name}" if h.name else "") for h in gpu.holders)
        table.add_row(
            cell(gpu.index),
            cell(gpu.name),
            bar(None if gpu.util_pct is None else gpu.util_pct / 100),
            bar(memory[0] / memory[1] if memory[0] is not None and memory[1] else None),
            bar(power[0] / power[1] if power[0] is not None and power[1] else None),
            "-" if gpu.temperature_c is None else f"{gpu.temperature_c:.0f}°C",
            cell(holders or "free"),
        )
    return table


def _queue_table(jobs: Sequence[PublicJob], live: LiveView) -> Table:
    table = Table(title="queue", title_justify="left", box=None, header_style="bold")
    for column in ("ID", "USER", "NAME", "STATE", "GPUS", "CPU", "MEM", "WHY / FLAGS"):
        table.add_column(column, no_wrap=column != "WHY / FLAGS")
    for job in jobs:
        usage = live.usage.get(job.id)
        table.add_row(
            cell(job.id),
            cell(job.user),
            cell(printable(job.name)[:20]),
            cell(job.state.value),
            cell(",".join(str(i) for i in job.gpu_indices) or "-"),
            f"{usage.cpu_s:.0f}s" if usage else "-",
            format_bytes(usage.memory_bytes) if usage else "-",
            cell(", ".join(job.flags) or job.reason),
        )
    return table


def render(client: Client) -> Group:
    """One frame."""
    live = client.telemetry()
    jobs = client.jobs([JobState.RUNNING, JobState.PENDING, JobState.REQUEUED])
    header = Text(f"tuxai top — {time.strftime('%H:%M:%S')} — q quits", style="bold")
    return Group(header, _gpu_table(live), Text(""), _queue_table(jobs, live))


@contextlib.contextmanager
def keys() -> Iterator[Any]:
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
    if once:
        from rich.console import Console

        Console().print(render(client))
        return 0
    with keys() as fd, Live(render(client), screen=True, auto_refresh=False) as screen:
        while True:
            if fd is None:
                time.sleep(interval_s)
            elif select.select([fd], [], [], interval_s)[0] and sys.stdin.read(1) in ("q", "Q"):
                return 0
            screen.update(render(client), refresh=True)
