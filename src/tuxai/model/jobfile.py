"""Job specs from people and from the wire: a YAML job file, ``submit`` flags, the API's JSON.

``spec_from_dict(data, origin)`` is the one validator: every error names the field and why.

    # job.yaml
    name: train
    command: python train.py --epochs 3     # or a list
    gpus: 2                                  # or gpu_share: 0.25 / gpu_mem: 10GiB / mig: 1g.10gb
    cpus: 8
    mem: 32GiB
    time: 4h                                 # 90 (minutes, as Slurm), 90s, 30m, 4h, 2d, 1:30:00, 1-12:00
    grace: 2m
    retries: 3
    export: {WANDB_MODE: offline}
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

import yaml

from tuxai.errors import UsageError
from tuxai.model.array import array_from
from tuxai.model.container import check_image, check_model
from tuxai.model.dependency import dependencies_from
from tuxai.model.gang import MAX_NODES, Launcher, torchrun_target
from tuxai.model.job import JobSpec
from tuxai.model.resources import WHOLE_GPU_MILLI, Request
from tuxai.model.session import MODES as SESSION_MODES
from tuxai.model.slurm import slurm_name
from tuxai.model.units import DURATION_FORMS, parse_bytes, parse_duration

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHARE = f"a fraction of one GPU between {1 / WHOLE_GPU_MILLI:g} and 1"
_HINT = "see `tuxai submit --help` or docs/jobs.md for the job file fields"
MAX_DURATION_S = 365 * 86400.0  # a time limit, grace or backoff longer than a year is a mistake
MAX_BYTES = 1024 * 2**40  # 1024 TiB: more than any machine has, and far below SQLite's integer limit

FIELDS = (
    *("name", "command", "gpus", "gpu_share", "gpu_mem", "mig", "gpu_type", "cpus", "mem", "time", "grace"),
    *("priority", "retries", "retry_backoff", "requeue", "preemptible", "workdir", "export", "env", "hold"),
    "env_lock",
    *("after", "array"),
    "session",
    *("nodes", "gpus_per_node", "launcher", "nproc_per_node"),
    *("image", "shm_size", "serve_model"),
    *("account", "partition", "qos"),
)


class _Fields:
    """Typed reads of one mapping; each failure is a ``UsageError`` naming the field."""

    def __init__(self, data: dict[str, Any], origin: str) -> None:
        self.data, self.origin = data, origin

    def fail(self, key: str, expected: str) -> UsageError:
        return UsageError(f"{self.origin}: {key} must be {expected}, got {self.data.get(key)!r}", hint=_HINT)

    def clean(self, key: str, text: str) -> str:
        """``text`` if a process can be given it: no NUL byte, encodable as UTF-8."""
        return checked_text(text, f"{self.origin}: {key}")

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.data.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().lstrip("-").isdigit():
            raise self.fail(key, "an integer")
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise self.fail(key, f"an integer {bound}")
        return number

    def duration(self, key: str, bare_s: float = 1.0) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        forms = ("90 (minutes), " if bare_s == 60 else "") + DURATION_FORMS
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key, f"a finite duration such as {forms}")
        try:
            seconds = parse_duration(value, bare_s)
        except (ValueError, TypeError):
            raise self.fail(key, f"a duration such as {forms}") from None
        if seconds > MAX_DURATION_S:
            raise self.fail(key, "at most 365 days (for no time limit, leave the field out)")
        return seconds

    def size(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        expected = "a size such as 512MiB or 32GiB, above 0"
        if isinstance(value, bool):
            raise self.fail(key, expected)
        try:
            count = parse_bytes(value)
        except (ValueError, TypeError):
            raise self.fail(key, expected) from None
        if count <= 0:
            raise self.fail(key, expected)
        if count > MAX_BYTES:
            raise self.fail(key, "at most 1024 TiB")
        return count

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(key, "text")
        return self.clean(key, str(value))

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value


def _command(fields: _Fields) -> tuple[str, ...]:
    value = fields.data.get("command")
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise fields.fail("command", f"a command line ({exc})") from None
    elif isinstance(value, list) and all(isinstance(w, str | int | float) for w in value):
        words = [str(w) for w in value]
    else:
        raise fields.fail("command", "a command line or a list of words")
    if not words:
        raise fields.fail("command", "a non-empty command")
    return tuple(fields.clean("command", word) for word in words)


def _request(fields: _Fields) -> Request:
    _refuse_a_fraction_of_gpus(fields)
    gpus = fields.integer("gpus", 0, maximum=1024)
    if fields.data.get("gpus_per_node") is not None:  # a gang's GPUs are per node, as Slurm's --gpus-per-node
        per_node = fields.integer("gpus_per_node", 0, maximum=1024)
        if fields.data.get("gpus") is not None and per_node != gpus:
            raise UsageError(f"{fields.origin}: gpus ({gpus}) and gpus_per_node ({per_node}) differ", hint="give one")
        gpus = per_node
    share = fields.data.get("gpu_share")
    milli = WHOLE_GPU_MILLI
    if share is not None:
        if isinstance(share, bool) or not isinstance(share, int | float | str):
            raise fields.fail("gpu_share", _SHARE)
        try:
            fraction = float(share)
        except ValueError:
            raise fields.fail("gpu_share", _SHARE) from None
        if not 1 / WHOLE_GPU_MILLI <= fraction <= 1:  # also refuses NaN; a share that rounds to 0 is none
            raise fields.fail("gpu_share", _SHARE)
        milli = round(fraction * WHOLE_GPU_MILLI)
    gpu_mem = fields.size("gpu_mem")
    mig = fields.text("mig") or None
    if mig is not None and not re.match(r"^\d+g\.\d+gb$", mig):
        raise fields.fail("mig", "a MIG profile such as 1g.10gb")
    if (share is not None or gpu_mem is not None) and mig is not None:
        raise UsageError(f"{fields.origin}: gpu_share/gpu_mem and mig cannot be combined", hint="ask for one kind")
    if (share is not None or gpu_mem is not None) and gpus == 0:
        gpus = 1
    if (share is not None or gpu_mem is not None) and gpus != 1:
        raise UsageError(f"{fields.origin}: a GPU share is a slice of one GPU, got gpus={gpus}", hint="drop gpus")
    if mig is not None and gpus == 0:
        gpus = 1
    types = tuple(t for t in fields.text("gpu_type").split("|") if t)
    return Request(
        gpus=gpus,
        gpu_milli=milli,
        gpu_mem_bytes=gpu_mem,
        mig_profile=mig,
        gpu_types=types,
        cpus=fields.integer("cpus", 1, minimum=1, maximum=100_000),
        memory_bytes=fields.size("mem") or 0,
    )


def _refuse_a_fraction_of_gpus(fields: _Fields) -> None:
    """``gpus: 0.5`` asks for a slice of one GPU, which is ``gpu_share``: say so rather than "an integer"."""
    value = fields.data.get("gpus")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return
    try:
        number = float(value)
    except ValueError:
        return
    if 0 < number < 1:
        raise UsageError(
            f"{fields.origin}: gpus counts whole GPUs, got {value!r}",
            hint=f"a slice of one GPU is --gpu-share {value}, or gpu_share: {value} in a job file",
        )


def _exports(fields: _Fields) -> tuple[tuple[str, str], ...]:
    value = fields.data.get("export") or {}
    if isinstance(value, list):
        pairs = []
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise fields.fail("export", "VAR=value items")
            key, _, text = item.partition("=")
            pairs.append((key, text))
    elif isinstance(value, dict):
        pairs = [(str(k), "" if v is None else str(v)) for k, v in value.items()]
    else:
        raise fields.fail("export", "a mapping of VAR: value")
    for key, text in pairs:
        if not _NAME.match(key):
            raise UsageError(f"{fields.origin}: export: {key!r} is not a variable name", hint="use VAR=value")
        fields.clean("export", text)
    return tuple(pairs)


def checked_text(text: str, where: str) -> str:
    """``text`` unchanged if a process can be given it (no NUL byte, valid UTF-8).

    Raises:
        UsageError: naming ``where`` (``spec: command``), with the offending text escaped.
    """
    if "\x00" in text:
        raise UsageError(f"{where} contains a NUL byte: {text!r}", hint="arguments and variables cannot hold NUL")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{where} is not UTF-8 text: {text!r}", hint="send text encodable as UTF-8") from None
    return text


def check_environment(environment: object, origin: str = "environment") -> dict[str, str]:
    """A submitter's environment (``VAR: value``) as ``execve`` can carry it.

    Names are anything but empty or with ``=`` (a shell's ``BASH_FUNC_f%%`` is fine).

    Raises:
        UsageError: not a mapping of text to text, a bad name, a NUL byte or text that is not UTF-8.
    """
    if not isinstance(environment, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in environment.items()
    ):
        raise UsageError(f"{origin} must be a mapping of VAR: text", hint="send os.environ as JSON")
    for name, value in environment.items():
        checked_text(name, f"{origin}: variable name {name!r}")
        if not name or "=" in name:
            raise UsageError(f"{origin}: {name!r} is not a variable name", hint="names cannot be empty or hold '='")
        checked_text(value, f"{origin}: {name}")
    return environment


def spec_from_dict(data: object, origin: str = "job", *, slurm_time: bool = False) -> JobSpec:
    """A mapping (job file, API body) → ``JobSpec``.

    ``slurm_time``: the fields as a person writes them (a job file, ``submit``'s flags), where a bare
    number of ``time`` is minutes, as Slurm's ``--time 90``; elsewhere (the API's JSON, the stored
    form) it is seconds. ``grace`` and ``retry_backoff`` are seconds in both.

    Raises:
        UsageError: an unknown field, or a field with a wrong value; the message names it.
    """
    if not isinstance(data, dict):
        raise UsageError(f"{origin} must be a mapping of field: value, got {type(data).__name__}", hint=_HINT)
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        exported = " (queue is for `tuxai export k8s`)" if "queue" in unknown else ""
        raise UsageError(
            f"{origin}: unknown field {', '.join(unknown)}{exported}", hint=f"known fields: {', '.join(FIELDS)}"
        )
    fields = _Fields(data, origin)
    grace = fields.duration("grace")
    backoff = fields.duration("retry_backoff")
    time_limit = fields.duration("time", 60.0 if slurm_time else 1.0)
    if time_limit is not None and time_limit <= 0:
        raise fields.fail("time", "a positive duration")
    return JobSpec(
        command=_command(fields),
        name=fields.text("name"),
        request=_request(fields),
        time_limit_s=time_limit,
        grace_s=60.0 if grace is None else grace,
        priority=fields.integer("priority", 0, maximum=100),
        retries=fields.integer("retries", 0, maximum=100),
        retry_backoff_s=5.0 if backoff is None else backoff,
        requeue=fields.flag("requeue", True),
        preemptible=fields.flag("preemptible", False),
        workdir=fields.text("workdir"),
        exports=_exports(fields),
        env_path=fields.text("env"),
        env_lock=fields.text("env_lock"),
        held=fields.flag("hold", False),
        after=dependencies_from(data.get("after"), f"{origin}: after"),
        array=array_from(data.get("array"), f"{origin}: array"),
        session=_session(fields),
        nodes=fields.integer("nodes", 1, minimum=1, maximum=MAX_NODES),
        launcher=_launcher(fields),
        procs_per_node=fields.integer("nproc_per_node", 0, maximum=1024),
        image=_image(fields),
        shm_bytes=fields.size("shm_size") or 0,
        serve_model=_serve_model(fields),
        **{key: slurm_name(fields.text(key), f"{origin}: {key}") for key in ("account", "partition", "qos")},
    )


def _launcher(fields: _Fields) -> Launcher | None:
    """A gang's launcher (``none`` when only ``nodes``/``gpus_per_node`` are given); None: not a gang."""
    if all(fields.data.get(k) is None for k in ("nodes", "gpus_per_node", "launcher", "nproc_per_node")):
        return None
    text = fields.text("launcher")
    launcher = Launcher.parse(text, f"{fields.origin}: launcher") if text else Launcher.NONE
    if launcher is Launcher.TORCHRUN:
        torchrun_target(_command(fields))  # refused at submit, in one line, when torchrun cannot run it
    return launcher


def _session(fields: _Fields) -> str:
    """``session``: how ``tuxai run`` attaches — "pty", "pipe", or none (a batch job)."""
    value = fields.text("session")
    if value not in ("", *SESSION_MODES):
        raise fields.fail("session", f"one of {', '.join(SESSION_MODES)}")
    return value


def _image(fields: _Fields) -> str:
    """``image``: a reference podman can only read as one (model.container.check_image); "": none."""
    image = fields.text("image").strip()
    return check_image(image, fields.text("workdir")) if image else ""


def _serve_model(fields: _Fields) -> str:
    """``serve_model``: the model a served container job reads, mounted read-only (model.container.check_model)."""
    path = fields.text("serve_model").strip()
    if path and not fields.text("image").strip():
        raise fields.fail("serve_model", "given with image (a served model is mounted into the job's image)")
    return check_model(path) if path else ""


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """``JobSpec`` → the mapping ``spec_from_dict`` reads back (the stored and wire form)."""
    request = spec.request
    data: dict[str, Any] = {
        "name": spec.name,
        "command": list(spec.command),
        "gpus": request.gpus,
        "cpus": request.cpus,
        "grace": spec.grace_s,
        "priority": spec.priority,
        "retries": spec.retries,
        "retry_backoff": spec.retry_backoff_s,
        "requeue": spec.requeue,
        "preemptible": spec.preemptible,
        "hold": spec.held,
    }
    if request.gpu_milli != WHOLE_GPU_MILLI:
        data["gpu_share"] = request.gpu_milli / WHOLE_GPU_MILLI
    optional = {
        "gpu_mem": request.gpu_mem_bytes,
        "mig": request.mig_profile,
        "gpu_type": "|".join(request.gpu_types) or None,
        "mem": request.memory_bytes or None,
        "time": spec.time_limit_s,
        "workdir": spec.workdir or None,
        "env": spec.env_path or None,
        "env_lock": spec.env_lock or None,
        "export": dict(spec.exports) or None,
        "after": [str(d) for d in spec.after] or None,
        "array": spec.array.text if spec.array else None,
        "session": spec.session or None,
        "nodes": spec.nodes if spec.launcher is not None else None,
        "launcher": spec.launcher.value if spec.launcher is not None else None,
        "nproc_per_node": spec.procs_per_node or None,
        "image": spec.image or None,
        "shm_size": spec.shm_bytes or None,
        "serve_model": spec.serve_model or None,
        **{key: getattr(spec, key) or None for key in ("account", "partition", "qos")},
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    return data


def load_job_file(text: str, origin: str) -> dict[str, Any]:
    """A YAML job file → its mapping (validated later with the flags merged in).

    Raises:
        UsageError: not YAML, or not a mapping.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{origin} is not valid YAML: {getattr(exc, 'problem', exc)}", hint=_HINT) from None
    if not isinstance(data, dict):
        raise UsageError(f"{origin} must be a mapping of field: value", hint=_HINT)
    return data
