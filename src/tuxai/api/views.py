"""The JSON shapes scripts read: a job (``job_view``) and the GPUs with their holders (``gpu_view``).

Stable keys (docs/jobs.md): ``id``, ``name``, ``user``, ``state``, ``exit_code``, ``gpus``
(UUIDs), ``reason``, ``submitted_at``, ``started_at``, ``ended_at``, ``log_path`` and more.
"""

from __future__ import annotations

from typing import Any

from tuxai.daemon.core import Caller, job_endpoint
from tuxai.model.inventory import Inventory
from tuxai.model.job import JobRecord, JobState
from tuxai.model.jobfile import spec_to_dict


def job_view(job: JobRecord, now: float) -> dict[str, Any]:
    """A job as the API and ``--json`` show it; times are Unix seconds."""
    allocation = job.allocation
    started = job.started_at
    ended = job.ended_at
    waited_until = started if started is not None else (ended if job.state.terminal else now)
    ran = None
    if started is not None:
        ran = (ended if ended is not None and job.state is not JobState.RUNNING else now) - started
    return {
        "id": job.id,
        "name": job.spec.display_name,
        "user": job.user,
        "state": job.state.value,
        "reason": job.reason,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "gpus": [g.mig_uuid or g.uuid for g in allocation.gpus] if allocation else [],
        "gpu_indices": [g.index for g in allocation.gpus] if allocation else [],
        "cpus": list(allocation.cpus) if allocation else [],
        "node": allocation.node if allocation else None,
        "submitted_at": job.submitted_at,
        "started_at": started,
        "ended_at": ended,
        "waited_s": max(0.0, (waited_until or now) - job.submitted_at),
        "ran_s": ran,
        "log_path": job.log_path,
        "command": list(job.spec.command),
        "attempt": job.attempt,
        "failures": job.failures,
        "requeues": job.requeues,
        "held": job.held,
        "priority": job.spec.priority,
        "wall_s": job.wall_s,
        "cpu_s": job.cpu_s,
        "max_rss_bytes": job.max_rss_bytes,
        "oom_killed": job.oom_killed,
        "flags": list(job.flags),
        "endpoint": _endpoint(job),
        "spec": spec_to_dict(job.spec),
    }


def _endpoint(job: JobRecord) -> str | None:
    """A served model's URL (``submit --serve``), read safely by the daemon (``job_endpoint``)."""
    return job_endpoint(job)


def gpu_view(inventory: Inventory, jobs: list[JobRecord], caller: Caller) -> list[dict[str, Any]]:
    """Each GPU: index, UUID, model, memory, and the running jobs holding it (or a slice of it)."""
    holders: dict[int, list[dict[str, Any]]] = {}
    for job in jobs:
        if job.state is not JobState.RUNNING or job.allocation is None:
            continue
        for share in job.allocation.gpus:
            holders.setdefault(share.index, []).append(
                {
                    "job": job.id,
                    "user": job.user,
                    "name": job.spec.display_name if caller.admin or caller.uid == job.uid else "",
                    "share": share.milli / 1000,
                    "mig": share.mig_uuid,
                }
            )
    return [
        {
            "index": gpu.index,
            "uuid": gpu.uuid,
            "name": gpu.name,
            "memory_total_bytes": gpu.memory_total_bytes,
            "mig": [m.profile for m in gpu.mig_devices],
            "holders": holders.get(gpu.index, []),
        }
        for gpu in inventory.gpus
    ]
