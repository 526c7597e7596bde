"""``tuxai top``'s screen as lines of a given width and height: pure, so any terminal size is a test.

Columns drop whole, least needed first, never cut into nonsense: at 80 columns a GPU row keeps
its index, utilization, memory, temperature, power and holder; wider terminals add the model,
the memory in bytes, bars and the queue's CPU and memory. The last column of a table (the holder,
the reason) takes what is left and ends with ``…`` when it must. MIG instances get a row each
when the height allows, else one summary in their GPU's row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rich.text import Text

from tuxai.cli.gpu_table import gpu_state, instance_holder, placement_words
from tuxai.cli.jobs import printable
from tuxai.model.units import format_bytes
from tuxai.model.wire import PublicJob
from tuxai.model.wire_gpus import GpuView, LiveGpu, LiveRank, LiveView

SORTS = ("gpu", "util", "memory", "user")
GAP = 2
Row = TypeVar("Row")


@dataclass(frozen=True)
class Column(Generic[Row]):
    """A column: its header, its width, how soon it drops (0: never), and its cell."""

    header: str
    width: int
    drop: int
    value: Callable[[Row], Text]


@dataclass(frozen=True)
class GpuRow:
    """One line of the GPU table: a GPU (``live`` its sample, ``view`` its holders) or one MIG instance."""

    label: str
    view: GpuView
    live: LiveGpu | None
    holder: str
    model: str


@dataclass
class TopState:
    """What the person chose: the sort, the selected job, the users panel, a question or a message."""

    sort: str = "gpu"
    selected: int | None = None  # a job id
    users: bool = False
    confirm: int | None = None  # the job a cancel waits a yes for
    message: str = ""
    order: list[int] = field(default_factory=list)  # the job ids as the queue shows them


def percent(value: float | None) -> Text:
    """``  7%``, ``100%``, `` n/a``: four characters, coloured by how busy."""
    if value is None:
        return Text(" n/a", style="dim")
    style = "green" if value < 50 else "yellow" if value < 85 else "red"
    return Text(f"{value:3.0f}%", style=style)


def fraction(used: float | None, total: float | None) -> float | None:
    """``used / total`` in percent, None when either is unknown."""
    return None if used is None or not total else 100 * used / total


def bar(value: float | None, width: int) -> Text:
    """``██████░░░░``: ``value`` percent of ``width`` cells."""
    if value is None:
        return Text("".ljust(width))
    filled = round(max(0.0, min(100.0, value)) / 100 * width)
    style = "green" if value < 50 else "yellow" if value < 85 else "red"
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")


def _util(row: GpuRow) -> float | None:
    return row.live.util_pct if row.live else None


def _memory(row: GpuRow) -> float | None:
    return fraction(row.live.memory_used_bytes, row.live.memory_total_bytes) if row.live else None


def _power(row: GpuRow) -> Text:
    live = row.live
    if live is None or live.power_w is None:
        return Text("-")
    return Text(f"{live.power_w:.0f}" + (f"/{live.power_limit_w:.0f}W" if live.power_limit_w else "W"))


def _memory_bytes(row: GpuRow) -> Text:
    live = row.live
    if live is None or live.memory_used_bytes is None:
        return Text("-")
    return Text(f"{format_bytes(live.memory_used_bytes)}/{format_bytes(live.memory_total_bytes)}")


def _temperature(row: GpuRow) -> Text:
    value = row.live.temperature_c if row.live else None
    return Text("-" if value is None else f"{value:.0f}°C")


GPU_COLUMNS: tuple[Column[GpuRow], ...] = (
    Column("GPU", 5, 0, lambda r: Text(r.label)),
    Column("UTIL", 4, 0, lambda r: percent(_util(r)) if r.live else Text("")),
    Column("", 12, 5, lambda r: bar(_util(r), 12)),
    Column("MEM", 4, 0, lambda r: percent(_memory(r)) if r.live else Text("")),
    Column("", 12, 6, lambda r: bar(_memory(r), 12)),
    Column("MEMORY", 19, 3, lambda r: _memory_bytes(r) if r.live else Text("")),
    Column("TEMP", 5, 1, lambda r: _temperature(r) if r.live else Text("")),
    Column("POWER", 9, 2, lambda r: _power(r) if r.live else Text("")),
    Column("MODEL", 16, 4, lambda r: Text(r.model)),
)
HOLDER_MIN = 28


def fit(columns: Sequence[Column[Row]], width: int, last_min: int) -> list[Column[Row]]:
    """The columns that fit ``width`` beside a last column of at least ``last_min``: those that drop
    soonest (highest ``drop``) go first; those with ``drop`` 0 always stay."""
    kept = list(columns)
    while sum(c.width + GAP for c in kept) + last_min > width:
        droppable = [c for c in kept if c.drop]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda c: c.drop))
    return kept


def _line(cells: Sequence[Text], widths: Sequence[int], last: Text, width: int) -> Text:
    line = Text()
    for text, size in zip(cells, widths, strict=True):
        piece = text.copy()
        piece.truncate(size, overflow="ellipsis", pad=True)
        line += piece + Text(" " * GAP)
    rest = max(1, width - line.cell_len)
    tail = last.copy()
    tail.truncate(rest, overflow="ellipsis")
    return line + tail


def _short_model(name: str) -> str:
    return name.removeprefix("NVIDIA ").removeprefix("AMD ")


def gpu_rows(live: LiveView, gpus: Sequence[GpuView], sort: str, instances: bool) -> list[GpuRow]:
    """The GPU table's rows in ``sort`` order (``SORTS``), each MIG instance beneath its GPU with ``instances``."""
    samples = {g.index: g for g in live.gpus}
    order = list(gpus)
    if sort == "util":
        order.sort(key=lambda g: -((samples[g.index].util_pct or 0.0) if g.index in samples else 0.0))
    elif sort == "memory":
        order.sort(key=lambda g: -(_memory(GpuRow("", g, samples.get(g.index), "", "")) or 0.0))
    elif sort == "user":
        order.sort(key=lambda g: (not (g.holders or g.outside), g.holders[0].user if g.holders else "~", g.index))
    rows = []
    for gpu in order:
        rows.append(
            GpuRow(str(gpu.index), gpu, samples.get(gpu.index), gpu_state(gpu, compact=True), _short_model(gpu.name))
        )
        if instances:
            for mig in gpu.mig_instances:
                label = f"{gpu.index}/{mig.index}"
                rows.append(GpuRow(label, gpu, None, instance_holder(gpu, mig, compact=True), f" MIG {mig.profile}"))
    return rows


def gpu_lines(rows: Sequence[GpuRow], width: int) -> list[Text]:
    """The GPU table at ``width``: a header, then one line per row."""
    columns = fit(GPU_COLUMNS, width, HOLDER_MIN)
    widths = [c.width for c in columns]
    header = _line([Text(c.header) for c in columns], widths, Text("HELD BY"), width)
    header.stylize("bold")
    return [header, *(_line([c.value(r) for c in columns], widths, Text(printable(r.holder)), width) for r in rows)]


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@dataclass(frozen=True)
class QueueRow:
    """A job in the queue as ``top`` shows it (``placed``: its GPUs in words)."""

    job: PublicJob
    placed: str
    cpu_s: float | None
    memory_bytes: int | None
    why: str
    ranks: tuple[LiveRank, ...] = ()  # a cluster job's ranks, each sampled on its node


QUEUE_COLUMNS: tuple[Column[QueueRow], ...] = (
    Column("ID", 4, 0, lambda r: Text(str(r.job.id))),
    Column("USER", 8, 0, lambda r: Text(printable(r.job.user))),
    Column("NAME", 12, 2, lambda r: Text(printable(r.job.name))),
    Column("STATE", 8, 0, lambda r: Text(r.job.state.value)),
    Column("GPUS", 22, 1, lambda r: Text(r.placed)),
    Column("WAITED", 7, 4, lambda r: Text(_ago(r.job.waited_s))),
    Column("RAN", 7, 3, lambda r: Text(_ago(r.job.ran_s))),
    Column("CPU", 7, 6, lambda r: Text("-" if r.cpu_s is None else f"{r.cpu_s:.0f}s")),
    Column("MEM", 9, 5, lambda r: Text("-" if r.memory_bytes is None else format_bytes(r.memory_bytes))),
)
WHY_MIN = 16


def queue_rows(jobs: Sequence[PublicJob], live: LiveView, gpus: Sequence[GpuView]) -> list[QueueRow]:
    """The queue's rows: running first, then by id."""
    rows = []
    for job in sorted(jobs, key=lambda j: (j.state.value != "running", j.id)):
        usage = live.usage.get(job.id)
        flags = live.flags.get(job.id, job.flags)
        why = ", ".join(flags) or job.reason
        rows.append(
            QueueRow(
                job,
                placement_words(job, gpus),
                usage.cpu_s if usage else None,
                usage.memory_bytes if usage else None,
                why,
                live.ranks.get(job.id, ()),
            )
        )
    return rows


def rank_line(rank: LiveRank) -> Text:
    """One rank of a cluster job under its row: its node, CPU time, memory and GPUs.

    >>> from tuxai.model.wire_gpus import LiveRankGpu
    >>> str(rank_line(LiveRank(1, "10.0.0.4", 0.0, 12.0, 2**20, (LiveRankGpu("GPU-ab12cd34ef", 40.0, None, 90.0),))))
    '  └ rank 1 on 10.0.0.4  CPU 12s  MEM 1.0 MiB  GPU-ab12cd34 40 % 90 W'
    """
    gpus = "  ".join(
        f"{(g.uuid or '?')[:12]} {'-' if g.util_pct is None else f'{g.util_pct:.0f}'} % "
        f"{'-' if g.power_w is None else f'{g.power_w:.0f}'} W"
        for g in rank.gpus
    )
    words = f"  └ rank {rank.rank} on {printable(rank.node)}  CPU {rank.cpu_s:.0f}s"
    words += f"  MEM {format_bytes(rank.memory_bytes)}"
    return Text(f"{words}  {gpus}" if gpus else words, style="dim")


def queue_lines(rows: Sequence[QueueRow], selected: int | None, width: int, height: int) -> list[Text]:
    """The queue at ``width``, in at most ``height`` lines (the selected job kept in view)."""
    columns = fit(QUEUE_COLUMNS, width, WHY_MIN)
    widths = [c.width for c in columns]
    header = _line([Text(c.header) for c in columns], widths, Text("WHY / FLAGS"), width)
    header.stylize("bold")
    blocks = []
    for row in rows:
        line = _line([c.value(row) for c in columns], widths, Text(printable(row.why)), width)
        if row.job.id == selected:
            line.stylize("reverse")
        blocks.append([line, *(rank_line(rank) for rank in row.ranks)])  # a cluster job: its ranks under it
    room = max(0, height - 1)
    if sum(len(b) for b in blocks) <= room:
        return [header, *(line for block in blocks for line in block)]
    ids = [r.job.id for r in rows]
    start, end = _window([len(b) for b in blocks], ids.index(selected) if selected in ids else 0, room - 1)
    body = [line for block in blocks[start:end] for line in block][: max(1, room - 1)]
    return [header, *body, Text(f"… {len(rows) - (end - start)} more jobs (↑↓ scroll)", style="dim")][:height]


def _window(sizes: Sequence[int], selected: int, room: int) -> tuple[int, int]:
    """The rows ``[start, end)`` shown in ``room`` lines (``sizes``: each row's lines, its ranks'
    included): the ``selected`` row kept in view, whole rows only (one larger than ``room`` cut).

    >>> _window([3, 3, 3, 3, 3, 3], 4, 8)
    (3, 5)
    """
    start = selected
    while start > 0 and sum(sizes[start - 1 : selected + 1]) <= room:
        start -= 1
    end = selected + 1
    while end < len(sizes) and sum(sizes[start : end + 1]) <= room:
        end += 1
    return start, end


@dataclass(frozen=True)
class UserRow:
    """One user's share of the machine now: GPUs (whole equivalents) and MIG instances held, jobs, GPU-hours."""

    user: str
    gpus: float
    mig: int
    running: int
    pending: int
    gpu_hours: float


def user_rows(jobs: Sequence[PublicJob], gpus: Sequence[GpuView]) -> list[UserRow]:
    """Per user, from the running holders and the queue; GPU-hours of the running jobs so far."""
    held: dict[int, float] = {}
    mig: dict[int, int] = {}
    for gpu in gpus:
        for holder in gpu.holders:
            if holder.mig:
                mig[holder.job] = mig.get(holder.job, 0) + 1
                held[holder.job] = held.get(holder.job, 0.0) + 1 / max(1, len(gpu.mig_instances))
            else:
                held[holder.job] = held.get(holder.job, 0.0) + holder.share
    table: dict[str, list[float]] = {}
    for job in jobs:
        row = table.setdefault(job.user, [0.0, 0.0, 0.0, 0.0, 0.0])
        running = job.state.value == "running"
        row[0] += held.get(job.id, 0.0) if not mig.get(job.id) else 0.0
        row[1] += mig.get(job.id, 0)
        row[2] += running
        row[3] += not running
        row[4] += held.get(job.id, 0.0) * (job.ran_s or 0.0) / 3600
    rows = [UserRow(user, r[0], int(r[1]), int(r[2]), int(r[3]), r[4]) for user, r in table.items()]
    return sorted(rows, key=lambda r: (-(r.gpus + r.mig), r.user))


USER_COLUMNS: tuple[Column[UserRow], ...] = (
    Column("USER", 12, 0, lambda r: Text(printable(r.user))),
    Column("GPUS", 6, 0, lambda r: Text(f"{r.gpus:g}")),
    Column("MIG", 4, 1, lambda r: Text(str(r.mig))),
    Column("RUN", 4, 0, lambda r: Text(str(r.running))),
    Column("PEND", 5, 0, lambda r: Text(str(r.pending))),
)


def user_lines(rows: Sequence[UserRow], width: int, height: int) -> list[Text]:
    """The per-user panel at ``width``, in at most ``height`` lines."""
    columns = fit(USER_COLUMNS, width, 10)
    widths = [c.width for c in columns]
    header = _line([Text(c.header) for c in columns], widths, Text("GPU-H (running jobs)"), width)
    header.stylize("bold")
    body = [_line([c.value(r) for c in columns], widths, Text(f"{r.gpu_hours:.2f}"), width) for r in rows]
    return [header, *body][: max(0, height)]


KEYS = "↑↓ select · c cancel · s sort · u users · q quit"


def frame(
    live: LiveView,
    gpus: Sequence[GpuView],
    jobs: Sequence[PublicJob],
    state: TopState,
    size: tuple[int, int],
    clock: str,
) -> list[Text]:
    """The whole screen for a terminal of ``size`` (columns, lines): at most that many lines, none wider."""
    width, height = max(20, size[0]), max(6, size[1])
    head = Text(f"tuxai top — {clock} — GPUs ({live.sampler}) — sort: {state.sort}", style="bold")
    head.truncate(width, overflow="ellipsis")
    instances = sum(len(g.mig_instances) for g in gpus)
    roomy = height - 1 - len(gpus) - instances - 1 >= 12
    lines = [head, *gpu_lines(gpu_rows(live, gpus, state.sort, roomy), width)] if gpus else [head, Text("no GPU")]
    footer = Text(state.message or KEYS, style="bold yellow" if state.message else "dim")
    footer.truncate(width, overflow="ellipsis")
    left = height - len(lines) - 2  # a blank line above the bottom panel, the footer below it
    rows = queue_rows(jobs, live, gpus)
    state.order = [r.job.id for r in rows]
    if state.users:
        bottom = user_lines(user_rows(jobs, gpus), width, left)
    else:
        bottom = queue_lines(rows, state.selected, width, left)
    return [*lines[: height - 1], Text(""), *bottom, footer][-height:] if left > 0 else [*lines[: height - 1], footer]
