"""Pure scheduling policy: ``decide(snapshot) -> decisions``. No I/O, no clock."""

from tuxai.scheduler.config import SchedulerConfig, parse_scheduler_config
from tuxai.scheduler.decide import decide
from tuxai.scheduler.decisions import Decision, Preempt, Reject, Reserve, Start
from tuxai.scheduler.snapshot import Job, Node, Running, Snapshot

__all__ = [
    "Decision",
    "Job",
    "Node",
    "Preempt",
    "Reject",
    "Reserve",
    "Running",
    "SchedulerConfig",
    "Snapshot",
    "Start",
    "decide",
    "parse_scheduler_config",
]
