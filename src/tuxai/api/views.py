"""The JSON shapes scripts read: a job (``job_view``) and the GPUs with their holders (``gpu_view``).

Stable keys (docs/jobs.md): ``id``, ``name``, ``user``, ``state``, ``exit_code``, ``gpus``
(UUIDs), ``reason``, ``submitted_at``, ``started_at``, ``ended_at``, ``log_path`` and more.

What a caller sees of a job is decided in one place, ``public_fields``: the queue is
everyone's to see (``PUBLIC``: who runs what name where, how long, why it waits — what
Slurm's squeue shows), while the command, environment, spec, log, endpoint and checkpoints
are the owner's and root's. Every view (``/v1/jobs``, ``/v1/gpus``, ``/v1/telemetry``,
``/metrics``) goes through it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from tuxai.daemon.core import Caller, job_endpoint
from tuxai.model.inventory import Inventory
from tuxai.model.job import JobRecord, JobState
from tuxai.model.jobfile import spec_to_dict

PUBLIC = frozenset(
    {
        *("id", "name", "user", "state", "reason", "exit_code", "signal", "held", "priority", "flags"),
        *("gpus", "gpu_indices", "cpus", "node", "submitted_at", "started_at", "ended_at", "waited_s", "ran_s"),
    }
)
ANYONE = Caller("", -1, -1)  # whoever reaches /metrics: no uid owns a job


def public_fields(job: JobRecord, caller: Caller, private_queue: bool = False) -> frozenset[str] | None:
    """The fields of ``job`` that ``caller`` may see: None for all (its owner, root, the daemon's
    owner), ``PUBLIC`` for anyone else, nothing with ``private_queue`` (users see only their own jobs)."""
    if caller.admin or caller.uid == job.uid:
        return None
    return frozenset() if private_queue else PUBLIC


def public_name(job: JobRecord, caller: Caller = ANYONE, private_queue: bool = False) -> str:
    """The job's name if ``public_fields`` lets ``caller`` see it (``ANYONE``: /metrics), else ``""``."""
    fields = public_fields(job, caller, private_queue)
    return job.spec.display_name if fields is None or "name" in fields else ""


def shown(job: JobRecord, now: float, caller: Caller, private_queue: bool = False) -> dict[str, Any] | None:
    """``job_view`` cut to what ``caller`` may see (``public_fields``); None if nothing."""
    fields = public_fields(job, caller, private_queue)
    if fields is not None and not fields:
        return None
    view = job_view(job, now)
    return view if fields is None else {k: v for k, v in view.items() if k in fields}


def job_view(job: JobRecord, now: float) -> dict[str, Any]:
    """A job as its owner sees it (``shown`` cuts it for others); times are Unix seconds."""
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


def gpu_view(
    inventory: Inventory, jobs: list[JobRecord], caller: Caller, private_queue: bool = False
) -> list[dict[str, Any]]:
    """Each GPU: index, UUID, model, memory, and the running jobs holding it (or a slice of it).

    Who holds a GPU (job id, user) is the point of the question; the name is shown by ``public_fields``.
    """
    holders: dict[int, list[dict[str, Any]]] = {}
    for job in jobs:
        if job.state is not JobState.RUNNING or job.allocation is None:
            continue
        name = public_name(job, caller, private_queue)
        for share in job.allocation.gpus:
            holders.setdefault(share.index, []).append(
                {
                    "job": job.id,
                    "user": job.user,
                    "name": name,
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


# ---- the request and error bodies, for /openapi.json (spec_from_dict checks the values) ----------

_TEXT = {"type": "string"}
_WHOLE = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]}
_DURATION = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 365 * 86400}, {"type": "string"}]}
_SIZE = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}
# Any JSON value reaches the one validator (spec_from_dict); the schema is for the document.
_Text = Annotated[Any, WithJsonSchema(_TEXT)]
_Whole = Annotated[Any, WithJsonSchema(_WHOLE)]
_Duration = Annotated[Any, WithJsonSchema(_DURATION)]
_Size = Annotated[Any, WithJsonSchema(_SIZE)]
_Flag = Annotated[Any, WithJsonSchema({"type": "boolean"})]
_Command = Annotated[Any, WithJsonSchema({"anyOf": [_TEXT, {"type": "array", "items": _TEXT, "minItems": 1}]})]
_EXPORTS = {"anyOf": [{"type": "object", "additionalProperties": _TEXT}, {"type": "array", "items": _TEXT}]}
_Exports = Annotated[Any, WithJsonSchema(_EXPORTS)]


class JobSpecFields(BaseModel):
    """A job file's fields (docs/jobs.md); values are checked by ``tuxai.model.jobfile.spec_from_dict``."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    command: _Command = Field(description="a command line or a list of words")
    name: _Text = Field(None, description="shown by `tuxai ls`")
    gpus: _Whole = Field(None, description="whole GPUs")
    gpu_share: Annotated[Any, WithJsonSchema({"type": "number", "minimum": 0.001, "maximum": 1})] = Field(
        None, description="a slice of one GPU"
    )
    gpu_mem: _Size = Field(None, description="GPU memory of a slice: bytes, or 10GiB")
    mig: _Text = Field(None, description="a MIG profile such as 1g.10gb")
    gpu_type: _Text = Field(None, description="allowed models: A100|H100")
    cpus: _Whole = Field(None, description="CPUs")
    mem: _Size = Field(None, description="memory limit: bytes, or 32GiB")
    time: _Duration = Field(None, description="time limit: seconds, or 90s, 30m, 4h, 2d, 1:30:00; 365 days at most")
    grace: _Duration = Field(None, description="SIGTERM to SIGKILL on cancel, preemption, timeout")
    priority: _Whole = Field(None, description="0 to 100")
    retries: _Whole = Field(None, description="0 to 100")
    retry_backoff: _Duration = Field(None, description="the wait before the first retry")
    requeue: _Flag = Field(None, description="a preempted job goes back to the queue")
    preemptible: _Flag = Field(None, description="higher-priority jobs may stop it")
    workdir: _Text = Field(None, description="working directory")
    export: _Exports = Field(None, description="variables for the job: {VAR: value} or [VAR=value]")
    env: _Text = Field(None, description="a virtual environment")
    hold: _Flag = Field(None, description="submit held")


class SubmitBody(BaseModel):
    """``POST /v1/jobs``: the spec, and the environment the job starts from (the submitter's)."""

    model_config = ConfigDict(extra="forbid")

    spec: JobSpecFields
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="VAR: value, as os.environ",
        json_schema_extra={"propertyNames": {"pattern": "^[^=\u0000]+$"}},
    )


class Submitted(BaseModel):
    """The id of a job just submitted."""

    id: int


class ErrorBody(BaseModel):
    """Every error the API answers."""

    error: str = Field(description="the kind: UsageError, PermissionDenied, JobNotFound …")
    message: str = Field(description="what happened, with the bad value")
    hint: str = Field(description="what to do")


_MEANING = {
    400: "bad input: a malformed body, a wrong field or query value",
    401: "on TCP: no bearer token, or a wrong one",
    403: "another user's job, or an admin's operation",
    404: "no such job (or path)",
    409: "a state change the job's state does not allow",
    413: "a request body over 1 MiB",
    431: "a request line and headers over 64 KiB",
    503: "the daemon cannot do it now",
    507: "the store cannot be written (disk full)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of these error codes, each with ``ErrorBody``."""
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in codes}


def without_422(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document without FastAPI's 422: this API answers a request it cannot validate with 400."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    for name in ("HTTPValidationError", "ValidationError"):
        document.get("components", {}).get("schemas", {}).pop(name, None)
    return document
