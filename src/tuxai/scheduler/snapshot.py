"""What the scheduler sees: nodes, running jobs, the pending queue, usage and ``now``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tuxai.model.inventory import Inventory
from tuxai.model.resources import Allocation, Request
from tuxai.scheduler.config import SchedulerConfig
from tuxai.scheduler.quotas import Quotas


@dataclass(frozen=True, eq=False)
class Node:
    """One machine the scheduler may place jobs on (compared by identity: inventories are large)."""

    name: str
    inventory: Inventory


@dataclass(frozen=True)
class Job:
    """A job as the scheduler needs it: who, what, how long at most, how important."""

    id: str
    user: str
    request: Request
    submitted_at: float
    time_limit_s: float | None = None
    priority: int = 0
    preemptible: bool = False
    groups: tuple[str, ...] = ()  # the unix groups it was submitted with (for group quotas)
    nodes: int = 1  # a gang: this many distinct nodes, each holding ``request`` (scheduler.gang)


@dataclass(frozen=True)
class Running:
    """A job that holds an allocation since ``started_at``; ``draining`` once told to stop."""

    job: Job
    allocation: Allocation
    started_at: float
    draining: bool = False

    @property
    def allocations(self) -> tuple[Allocation, ...]:
        """Every node's allocation, the first first (a gang's others are ``allocation.more``)."""
        return (self.allocation, *self.allocation.more)


@dataclass(frozen=True)
class Snapshot:
    """Everything ``decide`` reads. ``usage`` is each user's decayed GPU-seconds; ``busy_outside``:
    node → GPU index → who uses it outside tuxai ("pid 4242 of alice"), GPUs never handed out."""

    nodes: tuple[Node, ...]
    now: float
    pending: tuple[Job, ...] = ()
    running: tuple[Running, ...] = ()
    usage: dict[str, float] = field(default_factory=dict)
    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    quotas: Quotas = field(default_factory=Quotas)  # caps per user and group (scheduler.quotas)
    quota_use: dict[str, float] = field(default_factory=dict)  # GPU-seconds in quotas' window, by user and @group
    busy_outside: Mapping[str, Mapping[int | tuple[int, int], str]] = field(default_factory=dict)  # GPU or (GPU, MIG)


def decay_usage(usage: float, elapsed_s: float, half_life_s: float) -> float:
    """Usage ``elapsed_s`` later: halved every ``half_life_s``."""
    return float(usage * 0.5 ** (max(0.0, elapsed_s) / half_life_s))
