"""An in-memory ``Executor`` for driving ``Daemon.tick(now)`` through races without processes.

The test plays the shim: ``claim`` (the shim took the attempt), ``exit`` (it recorded an
outcome), ``die`` (it vanished without one). The fake keeps the seam's rules
(``executor.attempt``): ``prepare`` makes the local layout's run directory and launch.json
(never reused: ``AttemptTaken``), an attempt is claimed once, by the shim or by the daemon's
``abandon``. Its attempts are keyed by the handle as a ``Path`` (the local handle's form).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tuxai.executor.attempt import AttemptHandle, AttemptTaken, Observed, Processes, Seen
from tuxai.executor.rundir import Launch, Phase, Status, write_launch
from tuxai.model.job import StopReason


@dataclass
class Attempt:
    """One run directory as the fake sees it."""

    claimed_by: str = ""  # "", "shim" or "daemon"
    alive: bool = False
    status: Status | None = None
    stops: list[StopReason] = field(default_factory=list)  # the stop requests it was sent, in order


class FakeExecutor:
    """Attempts in a dict; the test moves them along."""

    def __init__(self) -> None:
        self.attempts: dict[Path, Attempt] = {}
        self.started: list[Path] = []
        self.killed: list[Path] = []  # the attempts kill_lost was asked to reap

    # ---- the Executor protocol ----------------------------------------------------------

    def prepare(self, launch: Launch) -> AttemptHandle:
        run_dir = Path(launch.job_dir) / f"run-{launch.attempt}"
        try:
            write_launch(run_dir, launch)
        except FileExistsError as exc:
            raise AttemptTaken(str(run_dir)) from exc
        return AttemptHandle(str(run_dir))

    def start(self, handle: AttemptHandle) -> None:
        self.attempts[Path(handle)] = Attempt()
        self.started.append(Path(handle))

    def stop(self, handle: AttemptHandle, reason: StopReason) -> None:
        self.attempts.setdefault(Path(handle), Attempt()).stops.append(reason)

    def observe(self, handle: AttemptHandle) -> Observed:
        attempt = self.attempts.get(Path(handle))
        if attempt is None:
            return Observed(Seen.VANISHED, None)
        if attempt.status is not None and attempt.status.phase is Phase.EXITED:
            return Observed(Seen.EXITED, attempt.status)
        if attempt.alive:
            return Observed(Seen.ALIVE, attempt.status)
        if not attempt.claimed_by:
            return Observed(Seen.NOT_STARTED, attempt.status)
        return Observed(Seen.LOST, attempt.status)

    def abandon(self, handle: AttemptHandle) -> bool:
        attempt = self.attempts.setdefault(Path(handle), Attempt())
        if attempt.claimed_by:
            return attempt.claimed_by == "daemon"
        attempt.claimed_by = "daemon"
        return True

    def kill_lost(self, handle: AttemptHandle) -> None:
        self.killed.append(Path(handle))

    def processes(self, handle: AttemptHandle) -> Processes | None:
        return None  # the fake's pids are not real: telemetry measures nothing of them

    def close(self) -> None:
        pass

    # ---- the shim's side, played by the test ---------------------------------------------

    def claim(self, run_dir: Path, now: float) -> bool:
        """The shim takes the attempt (False: the daemon abandoned it first) and starts the job."""
        attempt = self.attempts[run_dir]
        if attempt.claimed_by:
            return False
        attempt.claimed_by, attempt.alive = "shim", True
        attempt.status = Status(Phase.RUNNING, 4242, pid=4243, pgid=4243, started_at=now)
        return True

    def exit(self, run_dir: Path, now: float, code: int | None = 0, signal: int | None = None, stop: str = "") -> None:
        """The job ended and the shim recorded it (``stop``: the stop the shim had acted on)."""
        attempt = self.attempts[run_dir]
        started = attempt.status.started_at if attempt.status else now
        attempt.alive = False
        attempt.status = Status(
            Phase.EXITED, 4242, pid=4243, pgid=4243, started_at=started, ended_at=now,
            exit_code=code, signal=signal, stop_reason=StopReason.parse(stop),
        )  # fmt: skip

    def die(self, run_dir: Path) -> None:
        """The shim was killed (kill -9, the OOM killer) before it recorded anything."""
        self.attempts[run_dir].alive = False
