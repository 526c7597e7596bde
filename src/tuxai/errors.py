"""The one error tree of tuxai.

Every error a person can act on is a ``TuxaiError``: its message says what
happened and the bad value, its ``hint`` says what to do.

    TuxaiError
    ├── UsageError              wrong flag, bad value, missing file
    ├── ConfigError             settings file or environment variable is wrong
    ├── InventoryError          a simulated inventory file is malformed
    ├── ProbeError              a tool's output could not be read
    │   └── ToolOutputError     the output is truncated or malformed
    ├── InvalidTransition       a job state change the table forbids
    ├── StoreError              the store cannot be opened or written (disk full, damaged, newer)
    ├── JobNotFound             no job with that id
    ├── PermissionDenied        the job belongs to somebody else
    └── DaemonError             the daemon is not running, or answered something unreadable
"""

from __future__ import annotations


class TuxaiError(Exception):
    """Base of every error tuxai raises on purpose."""

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
