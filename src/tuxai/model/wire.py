"""The frozen types that cross the API: what the daemon answers, the SDK returns, the CLI renders.

    PublicJob               a job as anyone sees it (docs/jobs.md, "Who sees what")
    └── Job                 as its owner sees it (and root, and the daemon's owner): + command, spec, log …
        └── JobDetail       + its history and energy: GET /v1/jobs/{id}
    JobEvent, EnergyTotals  the parts of a JobDetail
    GpuView, LiveView …     GET /v1/gpus, GET /v1/telemetry: in ``model/wire_gpus.py``
    Standing, PriorityTerm  a job's priority terms and reserved start (``tuxai show``, ``ls --explain``)
    LimitsView, AccountUse, CapView   GET /v1/limits (quotas and their use: ``tuxai status``)
    Health                  GET /v1/health
    Submitted, Stopping     POST /v1/jobs, POST /v1/shutdown
    ErrorBody               every error answer: ``{error, message, hint}`` and the error's own fields

Each has one JSON form, ``to_json`` (the keys of docs/jobs.md; a job's ``spec`` is its job file's
fields, ``spec_to_dict``), and its strict inverse ``from_json`` (``job_from_json`` picks the job's
type), which the SDK reads every answer with: an answer not in the form is a ``DaemonError``.
``error_body`` and ``error_from_body`` carry a ``TuxaiError`` across as the same class with the
same message, hint and fields.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from tuxai import errors
from tuxai.errors import DaemonError, TuxaiError
from tuxai.model.job import JobSpec, JobState
from tuxai.model.jobfile import spec_from_dict, spec_to_dict

T = TypeVar("T")


@dataclass(frozen=True)
class PriorityTerm:
    """One factor of a job's priority (``scheduler.priority``): in [0, 1], its weight, and their product."""

    name: str  # priority, fairshare, age, size, short (the time limit)
    factor: float
    weight: float
    value: float


@dataclass(frozen=True)
class Standing:
    """Why, with numbers (Slurm's sprio): the terms the scheduler used at ``at``, their ``total``, the
    job's ``rank`` in its decision order (1: considered first), ``first`` when it went before any score
    (starving, or protected large), and a pending job's reserved start (None: no reservation)."""

    at: float
    rank: int
    total: float
    terms: tuple[PriorityTerm, ...]
    first: bool
    expected_start: float | None


@dataclass(frozen=True)
class CapView:
    """One quota of ``limits:``: ``max_gpus``, ``gpu_hours``, ``max_time`` (seconds) or ``max_pending``."""

    name: str
    limit: float
    path: str  # limits.users.alice.max_gpus: where it is set


@dataclass(frozen=True)
class AccountUse:
    """A user's or a group's use beside their caps: GPUs held, GPU-hours in the window, jobs waiting."""

    kind: str  # user or group
    who: str
    gpus_held: float
    gpu_hours: float
    pending: int
    caps: tuple[CapView, ...]


@dataclass(frozen=True)
class LimitsView:
    """``GET /v1/limits``: the caller's accounts (root: every account), GPU-hours over ``window_s``."""

    window_s: float
    accounts: tuple[AccountUse, ...]


@dataclass(frozen=True, kw_only=True)
class PublicJob:
    """A job as anyone may see it (the queue is public, as Slurm's squeue): times in Unix seconds."""

    id: int
    name: str
    user: str
    state: JobState
    reason: str
    exit_code: int | None
    signal: int | None
    held: bool
    priority: int
    flags: tuple[str, ...]  # telemetry's: idle, hung
    gpus: tuple[str | None, ...]  # UUIDs (MIG UUIDs for MIG slices)
    gpu_indices: tuple[int, ...]
    cpus: tuple[int, ...]
    node: str | None
    submitted_at: float
    started_at: float | None
    ended_at: float | None
    waited_s: float
    ran_s: float | None
    standing: Standing | None = None  # the scheduler's numbers, while it waits and as it started
    array_job: int | None = None  # a task of array ``array_job``: ``12_3`` (``tuxai.model.array``)
    array_index: int | None = None
    ranks: tuple[str, ...] = ()  # a Slurm job's nodes in rank order with Slurm's GPUs there: ``n1:0,1``


@dataclass(frozen=True, kw_only=True)
class Job(PublicJob):
    """A job as its owner, root and the daemon's owner see it: what was asked and how its runs went."""

    log_path: str
    command: tuple[str, ...]
    attempt: int
    failures: int
    requeues: int
    wall_s: float | None
    cpu_s: float | None
    max_rss_bytes: int | None
    oom_killed: bool
    endpoint: str | None  # a served model's URL (``submit --serve``)
    spec: JobSpec
    rank_exits: tuple[str, ...] = ()  # a gang's ranks' ends in words, rank order (its last attempt's)


@dataclass(frozen=True)
class JobEvent:
    """One transition of a job (``from_state`` None: its submission)."""

    at: float
    from_state: JobState | None
    to_state: JobState
    reason: str


@dataclass(frozen=True)
class EnergyTotals:
    """What a job used: kWh, CO2e at the grid's intensity and the room's PUE, GPU-hours, how measured."""

    gpu_kwh: float
    cpu_kwh: float
    total_kwh: float
    co2e_kg: float
    gpu_hours: float
    grid_g_per_kwh: float
    pue: float
    methods: Mapping[str, str]  # device ("gpu0", "cpu") → how it was measured
    gpu_util_mean_pct: float | None = None  # its GPUs' mean utilization while it ran (None: no sample said)
    gpu_memory_peak_bytes: float | None = None  # the most memory any of its GPUs held while it ran


@dataclass(frozen=True, kw_only=True)
class JobDetail(Job):
    """One job in full: its history, oldest first, and its energy (None before its first sample)."""

    events: tuple[JobEvent, ...]
    energy: EnergyTotals | None


@dataclass(frozen=True)
class Health:
    """The daemon answers: who it is, the machine, and how its loops fare."""

    ok: bool
    pid: int
    version: str
    home: str
    inventory: str  # where the machine's description came from
    gpus: int
    cpus: int
    cgroups: int  # 2, 1, or 0 (``cgroups_problem`` says why)
    cgroups_path: str
    cgroups_problem: str
    ticks: int
    last_tick_age_s: float | None
    tick_errors: int
    metrics: str  # HOST:PORT of the Prometheus listener, "" if none
    sampler: str
    cpu_energy: str
    cpu_energy_problem: str
    telemetry_steps: int
    telemetry_cpu_s: float
    telemetry_errors: int
    engine: str = "local"  # where jobs run: "local" (this machine), "slurm", "ray" (its nodes build --env's lockfile)


@dataclass(frozen=True)
class Submitted:
    """The id of a job just submitted."""

    id: int


@dataclass(frozen=True)
class Stopping:
    """The daemon is stopping (its running jobs go on)."""

    ok: bool


@dataclass(frozen=True)
class ErrorBody:
    """Every error the API answers: the ``TuxaiError``'s class name, message and hint, and the fields
    of the classes that have their own (absent from the JSON where None)."""

    error: str
    message: str
    hint: str
    job_id: int | str | None = None  # JobNotFound, InvalidTransition
    from_state: str | None = None  # InvalidTransition
    to_state: str | None = None  # InvalidTransition
    tool: str | None = None  # ToolOutputError
    problem: str | None = None  # ToolOutputError


# ---- the JSON form ------------------------------------------------------------------------------

VERSIONS_HINT = "the daemon and this client are different versions of tuxai? `tuxai status` shows the daemon's"
_OWN_FIELDS = tuple(f.name for f in dataclasses.fields(ErrorBody))[3:]


def to_json(value: object) -> object:
    """A wire value as JSON data: objects by field, tuples as lists, enums by value, a ``JobSpec``
    as its job file's fields; an ``ErrorBody`` without the fields its class does not have."""
    if isinstance(value, JobSpec):
        return spec_to_dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, ErrorBody):
            return {k: v for k, v in data.items() if v is not None or k not in _OWN_FIELDS}
        return data
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    return value


def from_json(cls: type[T], data: object, where: str = "answer") -> T:
    """``data`` (parsed JSON) as ``cls``, checked field by field; keys ``cls`` does not know are ignored.

    Raises:
        DaemonError: a missing field or a value of the wrong type, named by its path (``job.gpus[0]``).
    """
    value: T = _read(cls, data, where)
    return value


def job_from_json(data: object, where: str = "job") -> PublicJob:
    """A job as the daemon sent it: a ``JobDetail`` (with ``events``), a ``Job`` (with ``spec``), else a ``PublicJob``.

    Raises:
        DaemonError: not a job.
    """
    keys = data if isinstance(data, dict) else {}
    kind = JobDetail if "events" in keys else Job if "spec" in keys else PublicJob
    return from_json(kind, data, where)


def _unreadable(where: str, expected: str, value: object) -> DaemonError:
    got = str(value)[:80]
    return DaemonError(f"the daemon's answer is not readable: {where} should be {expected}, got {got!r}", VERSIONS_HINT)


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


_HINTS: dict[type[Any], dict[str, Any]] = {}
_SCALARS: dict[Any, tuple[type[Any], ...]] = {str: (str,), bool: (bool,), int: (int,), float: (int, float)}


def _read(kind: Any, value: object, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is JobSpec:
        return _read_spec(value, where)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _read_object(kind, value, where)
    if origin is types.UnionType or origin is typing.Union:
        return _read_union(args, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise _unreadable(where, "a list", value)
        return tuple(_read(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, dict):
            raise _unreadable(where, "an object", value)
        return {_key(args[0], k, where): _read(args[1], v, f"{where}[{k}]") for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, Enum):
        try:
            return kind(value)
        except ValueError:
            raise _unreadable(where, f"one of {', '.join(str(m.value) for m in kind)}", value) from None
    if kind in _SCALARS:
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, _SCALARS[kind]):
            raise _unreadable(where, f"a {kind.__name__}", value)
        return value
    raise TypeError(f"{kind!r} has no JSON form")  # a wire type declared with a type this module cannot read


def _read_spec(value: object, where: str) -> JobSpec:
    if not isinstance(value, dict):
        raise _unreadable(where, "a job file's fields", value)
    try:
        return spec_from_dict(value, origin=where)
    except TuxaiError as exc:
        raise _unreadable(where, f"a job spec ({exc.message})", value) from None


def _read_object(kind: type[Any], value: object, where: str) -> Any:
    if not isinstance(value, dict):
        raise _unreadable(where, "an object", value)
    given = {}
    for field in dataclasses.fields(kind):
        if field.name in value:
            given[field.name] = _read(_hints(kind)[field.name], value[field.name], f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise _unreadable(where, f"an object with {field.name}", value)
    return kind(**given)


def _read_union(members: tuple[Any, ...], value: object, where: str) -> Any:
    if value is None and type(None) in members:
        return None
    for member in (m for m in members if m is not type(None)):
        try:
            return _read(member, value, where)
        except DaemonError:
            continue
    raise _unreadable(where, " or ".join(getattr(m, "__name__", str(m)) for m in members), value)


def _key(kind: Any, key: str, where: str) -> object:
    if kind is int:
        if not key.lstrip("-").isdigit():
            raise _unreadable(f"{where} key", "an integer", key)
        return int(key)
    return key


# ---- errors -------------------------------------------------------------------------------------

ERRORS: Mapping[str, type[TuxaiError]] = {
    name: kind for name, kind in vars(errors).items() if isinstance(kind, type) and issubclass(kind, TuxaiError)
}
STATUS: Mapping[type[TuxaiError], int] = {
    errors.UsageError: 400,
    errors.PermissionDenied: 403,
    errors.JobNotFound: 404,
    errors.InvalidTransition: 409,
    errors.StoreError: 507,
    errors.DaemonError: 503,
}


def status_of(error: TuxaiError) -> int:
    """The HTTP status the API answers ``error`` with (its class's or its nearest base's; else 500)."""
    return next((STATUS[kind] for kind in type(error).__mro__ if kind in STATUS), 500)


def error_body(error: TuxaiError) -> ErrorBody:
    """The answer that carries ``error``: its class's name, message, hint and own fields."""
    own = {name: getattr(error, name) for name in _OWN_FIELDS if hasattr(error, name)}
    return ErrorBody(type(error).__name__, error.message, error.hint, **own)


def error_from_body(body: ErrorBody, status: int) -> TuxaiError:
    """The ``TuxaiError`` an answer with ``status`` carries: its class by name (an unknown name: by
    ``status``), its message, hint and own fields as sent, ``status`` as answered."""
    kind = ERRORS.get(body.error) or error_class(status)
    error = kind.__new__(kind)
    TuxaiError.__init__(error, body.message, body.hint)
    for name in _OWN_FIELDS:
        if getattr(body, name) is not None:
            setattr(error, name, getattr(body, name))
    error.status = status
    return error


def error_class(status: int) -> type[TuxaiError]:
    """The class of an error answer that names none of ours (a proxy's, a server's default page)."""
    if status in (401, 403):
        return errors.PermissionDenied
    if status == 507:
        return errors.StoreError
    return errors.UsageError if 400 <= status < 500 else errors.DaemonError
