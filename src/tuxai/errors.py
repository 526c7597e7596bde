"""The one error tree of tuxai.

Every error a person can act on is a ``TuxaiError``: its message says what
happened and the bad value, its ``hint`` says what to do.

    TuxaiError
    ├── UsageError              wrong flag, bad value, missing file
    │   ├── InferenceInputError an inference request the protocol or the model's signature refuses (400)
    │   └── RequestTooLarge     a request body over the server's cap (413)
    ├── ConfigError             settings file or environment variable is wrong
    ├── InventoryError          a simulated inventory file is malformed
    ├── ProbeError              a tool's output could not be read
    │   └── ToolOutputError     the output is truncated or malformed
    ├── InvalidTransition       a job state change the table forbids
    ├── StoreError              the store cannot be opened or written (disk full, damaged, newer)
    ├── JobNotFound             no job with that id
    ├── PermissionDenied        the job belongs to somebody else
    ├── DaemonError             the daemon is not running, or answered something unreadable
    ├── ClusterError            the cluster engine (Ray) is missing, unreachable, or a node's probe failed
    └── ServingError            the model server cannot serve a model as asked
        ├── ModelNotFound       no such model, or no such version of it, is loaded (404)
        ├── ModelNotReady       the model is there but no version is READY: loading, failed, unloading (503)
        ├── ModelLoadError      a model file its framework cannot load (the version is UNAVAILABLE)
        └── ModelOverloaded     a version's queue is full (503 with Retry-After)

The model server answers these in KServe's shape, ``{"error": message}``; the daemon's API in
``{error, message, hint}``.
"""

from __future__ import annotations

from collections.abc import Iterable


class TuxaiError(Exception):
    """Base of every error tuxai raises on purpose."""

    status: int | None = None  # the HTTP status of the API answer that carried it (set by the SDK)

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(TuxaiError):
    """A command was called with a wrong flag, value or file."""


class ConfigError(TuxaiError):
    """A setting (file, environment variable or flag) has a bad value."""


class InventoryError(TuxaiError):
    """A simulated inventory file does not describe a valid machine."""


class ProbeError(TuxaiError):
    """A hardware probe could not produce its part of the inventory."""


class ToolOutputError(ProbeError):
    """A tool's output is truncated or malformed.

    ``tool`` names the tool (``nvidia-smi -q -x``) so a finding can say which.
    """

    def __init__(self, tool: str, problem: str) -> None:
        super().__init__(
            f"{tool}: {problem}",
            hint=f"run `{tool}` by hand to see its output; `tuxai doctor --record DIR` saves it for a bug report",
        )
        self.tool = tool
        self.problem = problem


class InvalidTransition(TuxaiError):
    """A job was asked to move between two states the table does not connect."""

    def __init__(self, job_id: str, from_state: str, to_state: str) -> None:
        super().__init__(
            f"job {job_id} cannot go from {from_state} to {to_state}",
            hint="see `tuxai show JOB` for its current state",
        )
        self.job_id = job_id
        self.from_state = from_state
        self.to_state = to_state


class StoreError(TuxaiError):
    """The store cannot be opened or written: a full disk, a damaged file, a newer schema."""


class JobNotFound(TuxaiError):
    """No job has this id."""

    def __init__(self, job_id: int | str) -> None:
        super().__init__(f"no job {job_id}", hint="`tuxai ls` lists the jobs you can see")
        self.job_id = job_id


class PermissionDenied(TuxaiError):
    """A user tried to act on a job that is not theirs."""


class DaemonError(TuxaiError):
    """The daemon is not running or not reachable, or answered something unreadable."""


class ClusterError(TuxaiError):
    """The cluster engine (Ray) is not installed or not reachable, or a node could not be probed."""


class InferenceInputError(UsageError):
    """An inference request the Open Inference Protocol or the model's signature refuses: malformed
    JSON or binary data, a wrong input name, datatype or shape (the message names the expected one)."""


class RequestTooLarge(UsageError):
    """A request body over the server's cap (the message names the cap)."""


class ServingError(TuxaiError):
    """The model server cannot serve a model as asked."""


class ModelNotFound(ServingError):
    """No model of this name is loaded, or it has no such version."""

    def __init__(self, name: str, version: int | None, loaded: Iterable[object]) -> None:
        listed = ", ".join(str(item) for item in loaded) or "none"
        if version is None:
            super().__init__(f"no model '{name}' is loaded (models: {listed})")
        else:
            super().__init__(f"model '{name}' has no version {version} (loaded: {listed})")
        self.name, self.version = name, version


class ModelNotReady(ServingError):
    """The model is in the repository but not ready: loading, failed to load, or unloading.

    ``states`` holds each version considered as ``(number, state, reason)``.
    """

    def __init__(self, name: str, version: int | None, states: list[tuple[int, str, str]]) -> None:
        if version is None:
            reasons = "; ".join(f"version {n}: {state} {reason}".strip() for n, state, reason in states)
            message = f"model '{name}' is not ready ({reasons})"
        else:
            (_, state, reason), *_ = states
            message = f"model '{name}' version {version} is {state}: {reason}"
        super().__init__(message)
        self.name, self.version, self.states = name, version, states


class ModelLoadError(ServingError):
    """A model file that its framework cannot load, or a framework that is not installed."""


class ModelOverloaded(ServingError):
    """A model version's queue is full: the request was not queued (retry after a moment)."""
