"""The answers of the API as the wire types of ``tuxai.model.wire``, built from the daemon's records.

``job_view`` (a ``Job``), ``shown`` (what a caller may see of it), ``job_detail`` (with its history),
``gpu_view`` (the GPUs and their holders), ``live_view`` (``tuxai top``'s sample); ``answer`` sends
one as the JSON of docs/jobs.md.

What a caller sees of a job is decided in one place, ``public_fields``: the queue is
everyone's to see (``PUBLIC``, the fields of ``PublicJob``: who runs what name where, how long,
why it waits — what Slurm's squeue shows), while the command, environment, spec, log, endpoint
and checkpoints are the owner's and root's. Every view (``/v1/jobs``, ``/v1/gpus``,
``/v1/telemetry``, ``/metrics``) goes through it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from tuxai.daemon.core import Caller
from tuxai.daemon.jobdirs import job_endpoint
from tuxai.daemon.telemetry import TelemetryLoop
from tuxai.model.inventory import Inventory
from tuxai.model.job import JobRecord, JobState
from tuxai.model.resources import Allocation
from tuxai.model.slurm import CLUSTER_NODE, rank_places
from tuxai.model.wire import EnergyTotals, ErrorBody, Job, JobDetail, JobEvent, PublicJob, Standing, from_json, to_json
from tuxai.model.wire_gpus import (
    GpuHolder,
    GpuView,
    LiveGpu,
    LiveProcess,
    LiveUsage,
    LiveView,
    MigInstance,
    OutsideProcess,
)
from tuxai.telemetry.foreign import ForeignProcess

PUBLIC = frozenset(field.name for field in dataclasses.fields(PublicJob))
START_FAILURE = "cannot start "  # the shim's words when a job's command or directory fails (executor.shim)
PRIVATE_USAGE = ("read_bytes", "write_bytes", "log_bytes")  # of a running job: its owner's and root's
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


def shown(
    job: JobRecord, now: float, caller: Caller, private_queue: bool = False, standing: Standing | None = None
) -> PublicJob | None:
    """``job_view`` cut to what ``caller`` may see (``public_fields``): a ``Job``, a ``PublicJob``, or None."""
    fields = public_fields(job, caller, private_queue)
    if fields is not None and not fields:
        return None
    view = job_view(job, now, standing)
    if fields is None:
        return view
    public = {name: getattr(view, name) for name in fields}
    return PublicJob(**{**public, "reason": public_reason(view.reason)})


def public_reason(reason: str) -> str:
    """A reason as others read it: a start failure (``cannot start '/path/cmd': …``, from the shim)
    names the command and its directory, which are the owner's; every other reason is the queue's."""
    if reason.startswith(START_FAILURE):
        return "cannot start its command (its owner sees why in `tuxai show`)"
    return reason


def _gang_places(allocation: Allocation | None) -> tuple[str, ...]:
    """A gang's nodes on a cluster engine (Ray), rank 0 first, in a Slurm job's words: ``127.0.0.3:0,1``."""
    if allocation is None or not allocation.more:
        return ()
    return rank_places(replace(allocation, node=CLUSTER_NODE, more=(replace(allocation, more=()), *allocation.more)))


def job_view(job: JobRecord, now: float, standing: Standing | None = None) -> Job:
    """A job as its owner sees it (``shown`` cuts it for others); times are Unix seconds; ``standing``:
    its priority terms from the scheduler's last pass (``Daemon.standing``)."""
    allocation = job.allocation
    started = job.started_at
    ended = job.ended_at
    waited_until = started if started is not None else (ended if job.state.terminal else now)
    ran = None
    if started is not None:
        ran = (ended if ended is not None and job.state is not JobState.RUNNING else now) - started
    return Job(
        id=job.id,
        name=job.spec.display_name,
        user=job.user,
        state=job.state,
        reason=job.reason,
        exit_code=job.exit_code,
        signal=job.signal,
        gpus=tuple(g.mig_uuid or g.uuid for g in allocation.gpus) if allocation else (),
        gpu_indices=tuple(g.index for g in allocation.gpus) if allocation else (),
        cpus=tuple(allocation.cpus) if allocation else (),
        node=allocation.node if allocation else None,
        submitted_at=job.submitted_at,
        started_at=started,
        ended_at=ended,
        waited_s=max(0.0, (waited_until or now) - job.submitted_at),
        ran_s=ran,
        standing=standing if job.state in (JobState.PENDING, JobState.REQUEUED, JobState.RUNNING) else None,
        array_job=job.array_job,
        array_index=job.array_index,
        ranks=rank_places(allocation) or _gang_places(allocation),  # Slurm's placement (daemon.slurm), or Ray's
        rank_exits=job.rank_exits,
        log_path=job.log_path,
        command=job.spec.command,
        attempt=job.attempt,
        failures=job.failures,
        requeues=job.requeues,
        held=job.held,
        priority=job.spec.priority,
        wall_s=job.wall_s,
        cpu_s=job.cpu_s,
        max_rss_bytes=job.max_rss_bytes,
        oom_killed=job.oom_killed,
        flags=job.flags,
        endpoint=job_endpoint(job),  # read safely by the daemon: the job's own file, no link
        spec=replace(job.spec, env_lock="") if job.spec.env_lock else job.spec,  # the launch's, not ls/show's
    )


def job_detail(job: Job, events: list[dict[str, Any]], energy: dict[str, object] | None) -> JobDetail:
    """``job`` with its history (the store's event rows) and energy (``TelemetryLoop.energy``)."""
    own = {field.name: getattr(job, field.name) for field in dataclasses.fields(job)}
    return JobDetail(
        **own,
        events=tuple(from_json(JobEvent, row, "event") for row in events),
        energy=None if energy is None else from_json(EnergyTotals, energy, "energy"),
    )


def gpu_view(
    inventory: Inventory,
    jobs: list[JobRecord],
    caller: Caller,
    private_queue: bool = False,
    outside: Sequence[ForeignProcess] = (),
) -> list[GpuView]:
    """Each GPU: index, UUID, model, memory, its MIG instances, the running jobs holding it (or a
    slice or an instance of it), and the processes on it tuxai did not start (``outside``).

    Who holds a GPU (job id, user) is the point of the question; the name is shown by ``public_fields``.
    """
    holders: dict[int, list[GpuHolder]] = {}
    for job in jobs:
        if job.state is not JobState.RUNNING or job.allocation is None:
            continue
        name = public_name(job, caller, private_queue)
        for share in job.allocation.gpus:
            cap = share.memory_bytes if share.mig_uuid is None else None  # a slice's (whole GPUs: None)
            holder = GpuHolder(job.id, job.user, name, share.milli / 1000, share.mig_uuid, cap or None)
            holders.setdefault(share.index, []).append(holder)
    return [
        GpuView(
            index=gpu.index,
            uuid=gpu.uuid,
            name=gpu.name,
            memory_total_bytes=gpu.memory_total_bytes,
            mig=tuple(m.profile for m in gpu.mig_devices),
            holders=tuple(holders.get(gpu.index, [])),
            mig_instances=tuple(MigInstance(m.index, m.profile, m.uuid, m.memory_total_bytes) for m in gpu.mig_devices),
            outside=tuple(
                OutsideProcess(p.pid, p.user, p.memory_bytes, p.mig_index) for p in outside if p.gpu_index == gpu.index
            ),
        )
        for gpu in inventory.gpus
    ]


def live_view(
    telemetry: TelemetryLoop | None, inventory: Inventory, jobs: list[JobRecord], caller: Caller, private_queue: bool
) -> LiveView:
    """The latest sample of every GPU with its holders, and the usage and flags of the jobs ``caller`` may see."""
    if telemetry is None:
        return LiveView("none", "none", "", (), {}, {})
    live = telemetry.telemetry
    holders = {gpu.index: gpu.holders for gpu in gpu_view(inventory, jobs, caller, private_queue)}
    names = {gpu.index: gpu.name for gpu in inventory.gpus}
    seen = {j.id for j in jobs if public_fields(j, caller, private_queue) != frozenset()}
    own = {j.id for j in jobs if public_fields(j, caller, private_queue) is None}
    gpus = tuple(
        LiveGpu(
            **_copied(sample, LiveGpu, "processes", "name", "holders"),
            processes=tuple(LiveProcess(p.pid, p.memory_bytes, p.sm_util_pct) for p in sample.processes),
            name=names.get(sample.index, ""),
            holders=holders.get(sample.index, ()),
        )
        for sample in live.latest
    )
    usage = {j: _usage(u, j in own) for j, u in live.usage.items() if j in seen}
    flags = {j: tuple(sorted(f)) for j, f in live.flags.items() if f and j in seen}
    ranks = {j: r for j, r in (telemetry.cluster.ranks if telemetry.cluster else {}).items() if j in seen}
    return LiveView(live.sampler.method, live.cpu_method, live.cpu_problem, gpus, usage, flags, ranks)


def _usage(usage: Any, own: bool) -> LiveUsage:
    """A running job's counters (``telemetry.samples.JobUsage``); of another user's job without its I/O
    and its log's size, which Linux keeps to the owner (/proc/PID/io is mode 0400) as we keep the log."""
    fields = _copied(usage, LiveUsage, "pids")
    if not own:
        fields.update(dict.fromkeys(PRIVATE_USAGE))
    return LiveUsage(**fields, pids=tuple(sorted(usage.pids)))


def _copied(value: Any, wire: type[Any], *built: str) -> dict[str, Any]:
    """The fields of ``wire`` taken from ``value`` (a telemetry record) as they are, but those ``built``."""
    return {field.name: getattr(value, field.name) for field in dataclasses.fields(wire) if field.name not in built}


class WireResponse(JSONResponse):
    """A wire value (``tuxai.model.wire``) as the JSON of docs/jobs.md, ASCII only: any text encodes,
    a lone surrogate a client sent included."""

    def __init__(self, value: object, status_code: int = 200) -> None:
        super().__init__(to_json(value), status_code=status_code)

    def render(self, content: Any) -> bytes:
        """JSON with every non-ASCII character escaped."""
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


# ---- the request and error bodies, for /openapi.json (spec_from_dict checks the values) ----------

_TEXT = {"type": "string"}
_WHOLE = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]}
_DURATION = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 365 * 86400}, {"type": "string"}]}
_SIZE = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or null: spec_from_dict reads a null field as one left out (a job file's ``mem:``)."""
    return {"anyOf": [*schema.get("anyOf", [schema]), {"type": "null"}]}


# Any JSON value reaches the one validator (spec_from_dict); the schema is for the document.
_Text = Annotated[Any, WithJsonSchema(_or_null(_TEXT))]
_Whole = Annotated[Any, WithJsonSchema(_or_null(_WHOLE))]
_Duration = Annotated[Any, WithJsonSchema(_or_null(_DURATION))]
_Size = Annotated[Any, WithJsonSchema(_or_null(_SIZE))]
_Share = Annotated[Any, WithJsonSchema(_or_null({"type": "number", "minimum": 0.001, "maximum": 1}))]
_Flag = Annotated[Any, WithJsonSchema({"type": "boolean"})]
_Command = Annotated[Any, WithJsonSchema({"anyOf": [_TEXT, {"type": "array", "items": _TEXT, "minItems": 1}]})]
_EXPORTS = {"anyOf": [{"type": "object", "additionalProperties": _TEXT}, {"type": "array", "items": _TEXT}]}
_Exports = Annotated[Any, WithJsonSchema(_or_null(_EXPORTS))]


class JobSpecFields(BaseModel):
    """A job file's fields (docs/jobs.md); values are checked by ``tuxai.model.jobfile.spec_from_dict``."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    command: _Command = Field(description="a command line or a list of words")
    name: _Text = Field(None, description="shown by `tuxai ls`")
    gpus: _Whole = Field(None, description="whole GPUs")
    gpu_share: _Share = Field(None, description="a slice of one GPU")
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
    env_lock: _Text = Field(None, description="env's requirements text (submit fills it for Ray): nodes build it")
    hold: _Flag = Field(None, description="submit held")
    after: Annotated[Any, WithJsonSchema(_or_null({"anyOf": [_TEXT, {"type": "array", "items": _TEXT}]}))] = Field(
        None, description="dependencies: JOB[:ok|:any|:fail], one or a list"
    )
    array: _Text = Field(None, description="an array's indices: 0-99%8, 1,3,5-7, 0-20:4")
    session: _Text = Field(None, description="interactive (tuxai run): pty or pipe")
    image: _Text = Field(None, description="an OCI image the job runs in, through podman")
    shm_size: _Size = Field(None, description="the container's /dev/shm: bytes, or 16GiB (default 8GiB)")
    serve_model: _Text = Field(None, description="the model a served container job reads (mounted read-only)")


class SubmitBody(BaseModel):
    """``POST /v1/jobs``: the spec, and the environment the job starts from (the submitter's)."""

    model_config = ConfigDict(extra="forbid")

    spec: JobSpecFields
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="VAR: value, as os.environ",
        json_schema_extra={"propertyNames": {"pattern": "^[^=\u0000]+$"}},
    )


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


def openapi_document(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document, told two truths it cannot see: a job's ``spec`` travels as its job file's
    fields (``JobSpecFields``, as submitted), and a request it cannot validate is a 400, never a 422."""
    schemas = document.get("components", {}).get("schemas", {})
    if "JobSpec" in schemas:
        schemas["JobSpec"] = {"$ref": "#/components/schemas/JobSpecFields"}
        schemas.pop("Request", None)  # JobSpec's inner part, which is not on the wire
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document
