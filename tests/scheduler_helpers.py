"""Helpers to build scheduler snapshots from the example inventories."""

from __future__ import annotations

from dataclasses import replace

from tests.conftest import REPO
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.resources import Request
from tuxai.scheduler import Job, Node, Running, SchedulerConfig, Snapshot, Start, decide

EXAMPLES = REPO / "examples" / "inventories"
DGX = Node("dgx", load_inventory_file(EXAMPLES / "dgx-a100.yaml"))
WORKSTATION = Node("ws", load_inventory_file(EXAMPLES / "rtx6000ada-workstation.yaml"))
MI250X = Node("mi", load_inventory_file(EXAMPLES / "mi250x-node.yaml"))


def job(job_id: str, gpus: int = 1, *, user: str = "alice", at: float = 0.0, **changes: object) -> Job:
    """A pending job asking ``gpus`` whole GPUs; ``changes`` may set request fields or job fields."""
    request_fields = {k: v for k, v in changes.items() if k in Request.__dataclass_fields__}
    job_fields = {k: v for k, v in changes.items() if k in Job.__dataclass_fields__}
    request = replace(Request(gpus=gpus, cpus=1), **request_fields)  # type: ignore[arg-type]
    return Job(job_id, user, request, at, **job_fields)  # type: ignore[arg-type]


def run(
    nodes: tuple[Node, ...],
    pending: tuple[Job, ...],
    now: float = 100.0,
    running: tuple[Running, ...] = (),
    config: SchedulerConfig | None = None,
    usage: dict[str, float] | None = None,
) -> list[object]:
    """Decide once."""
    snapshot = Snapshot(nodes, now, pending, running, usage or {}, config or SchedulerConfig())
    return list(decide(snapshot))


def started(decisions: list[object]) -> dict[str, Start]:
    """The Start decisions by job id."""
    return {d.job_id: d for d in decisions if isinstance(d, Start)}
