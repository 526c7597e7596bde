"""The executor seam: what the daemon asks of any backend that runs attempts (local, Ray, Slurm, podman).

The daemon describes an attempt (``Launch``: command, environment, allocation's CPUs and
devices, cgroup plan, user, limits, the job's log place) and gets back an ``AttemptHandle``,
an opaque string it stores (the jobs table's ``run_dir`` column) and hands back for every
later question. Where the attempt's files live, how it is started, signalled and reaped is
the backend's alone: the daemon never builds a path from a handle.

What a backend must implement and guarantee:

* ``prepare(launch) -> handle``: record the launch durably enough that ``start`` can run it;
  start nothing. One ``(job_id, attempt)`` is prepared at most once, ever (a power cut may
  erase the store's record of an attempt that ran): a second ``prepare`` of it raises
  ``AttemptTaken`` and the daemon asks again with the next attempt number.
* The daemon commits the job as running with the handle *between* ``prepare`` and ``start``;
  ``start(handle)`` may then be lost (a crash), so an attempt must be able to sit prepared
  and never started.
* At most once: the attempt's runner (the shim) *claims* it before the job's first process
  starts, and ``abandon(handle)`` claims a never-started attempt for the daemon so that a
  late runner gives up. Exactly one of the two wins; ``abandon`` is True only when the
  daemon's claim won (or nothing of the attempt is left to start).
* ``observe(handle)`` says ``Seen``: EXITED with the runner's final ``Status``, ALIVE,
  QUEUED (an engine such as Slurm holds the submitted attempt and has not started it),
  NOT_STARTED (nobody claimed it: it may still be on its way), LOST (claimed, runner gone,
  no outcome), VANISHED (nothing of the attempt can be found: it may still run).
  It never blocks for long and never changes the attempt.
* ``stop(handle, reason)``: record ``reason`` where the runner reads it (also before it
  starts: a stop asked before the start wins), then ask the runner to stop (SIGTERM, the
  job's grace, SIGKILL). Idempotent: the daemon sends it again after a restart.
* ``kill_lost(handle)``: SIGKILL what is provably left of a LOST or VANISHED attempt — its
  cgroup, computed from the handle alone (its files may be gone), and a recorded process
  group only when proven the attempt's — never a pid that is now somebody else's.
* ``processes(handle)``: where the started attempt's processes can be measured on this
  machine (its process group and groups, for telemetry); None before it started, or when
  they run elsewhere (telemetry then comes from the backend's own nodes).
* ``close()``: release what the backend holds; running attempts go on (they outlive the
  daemon, and a new daemon finds them again from their handles).

Everything that crosses is typed: ``Launch`` (with its ``CgroupPlan``), ``StopReason``,
``Status``, ``Seen``. The local backend is ``executor.local``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType, Protocol

from tuxai.executor.rundir import Launch, Status
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.job import StopReason

AttemptHandle = NewType("AttemptHandle", str)  # the backend's name for one attempt; opaque to the daemon


class AttemptTaken(Exception):
    """``prepare`` of an attempt that was prepared before: attempts are never reused."""


class Seen(StrEnum):
    """What an attempt looks like from outside."""

    EXITED = "exited"  # the shim recorded the outcome
    ALIVE = "alive"  # the shim holds its lock
    QUEUED = "queued"  # handed to a cluster engine (Slurm) that has not started it yet: the attempt is kept
    NOT_STARTED = "not-started"  # no shim ever claimed the attempt (it may still be on its way)
    LOST = "lost"  # a shim claimed it and died without recording an outcome
    VANISHED = "vanished"  # nothing of the attempt is left: nothing says whether it still runs


@dataclass(frozen=True)
class Observed:
    """An attempt's ``Seen`` and its last status."""

    seen: Seen
    status: Status | None


@dataclass(frozen=True)
class Processes:
    """A started attempt's processes on this machine: its process group and its groups."""

    pgid: int
    cgroup: CgroupPlan


class Executor(Protocol):
    """Starts, observes, stops and reaps attempts (the contract above)."""

    def prepare(self, launch: Launch) -> AttemptHandle:
        """Record the attempt's launch; start nothing.

        Raises:
            AttemptTaken: this job's attempt number was prepared before.
        """

    def start(self, handle: AttemptHandle) -> None:
        """Start the prepared attempt (after the daemon committed it as running)."""

    def stop(self, handle: AttemptHandle, reason: StopReason) -> None:
        """Ask the attempt to stop: SIGTERM, grace, SIGKILL."""

    def observe(self, handle: AttemptHandle) -> Observed:
        """What became of the attempt."""

    def abandon(self, handle: AttemptHandle) -> bool:
        """Make sure a not-started attempt never starts; True when it is now abandoned."""

    def kill_lost(self, handle: AttemptHandle) -> None:
        """SIGKILL what is provably left of an attempt whose runner is gone: its cgroup, its group."""

    def processes(self, handle: AttemptHandle) -> Processes | None:
        """The attempt's process group and groups here, once its job started; None before or elsewhere."""

    def close(self) -> None:
        """Release what the executor holds (running jobs are not touched)."""
