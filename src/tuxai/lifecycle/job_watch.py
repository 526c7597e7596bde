"""``python -m tuxai.lifecycle.job_watch [--fork] [--lock-fd FD] FOLDER``: end submitted jobs' MLflow runs
as the jobs end — one watcher per user's ``open/`` folder, whatever the number of open runs.

Started by ``lifecycle.job_tracking`` as the user who submitted, in a session of its own, holding the
folder's ``watcher.lock`` (an ``flock``) for its whole life: a submit that finds the lock held starts no
other. It reads every ledger in the folder — those written after it started too — and asks each daemon
named in them for its unfinished jobs in one call (every 0.5 s while a run is in its first minute of
being watched, every 5 s after), so a hundred open runs cost one request per poll, not a hundred. When a
ledger's job has ended it logs its tags and metrics on the run, ends the run with the job's status and
removes the ledger. A daemon that stops answering (a restart) is asked again for ``GIVE_UP_S``; then
its ledgers are left for the next watcher (the next tracked submit starts one).

It also keeps the folder's run desk (``lifecycle.run_desk``): a submit asks it for a new run over a Unix
socket and gets its id in milliseconds, MLflow being loaded here already. With no ledger to follow and
no request answered for ``IDLE_S`` the watcher exits (the next submit starts one and pays MLflow's
import once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tuxai.lifecycle.run_desk import open_path

if TYPE_CHECKING:
    from tuxai.api.client import Client
    from tuxai.lifecycle.run_desk import RunDesk
    from tuxai.model.wire import PublicJob

GIVE_UP_S = 600.0  # a daemon that answers nothing this long: its ledgers stay for the next watcher
IDLE_S = 600.0  # no ledger to follow and no run asked for this long: the watcher exits (~225 MiB RSS held meanwhile)
LOOK_S = 0.5  # how often an idle watcher reads the folder again (no daemon asked)
LOCK = "watcher.lock"  # flock held by the folder's watcher for its life; its pid

Closer = Callable[[Mapping[str, object], "PublicJob", "Client"], None]


def poll_s(waited_s: float) -> float:
    """How long to sleep between two questions after ``waited_s`` of waiting: 0.5 s, then 5 s after a minute.

    >>> poll_s(1.0), poll_s(120.0)
    (0.5, 5.0)
    """
    return 0.5 if waited_s < 60 else 5.0


def lock_watcher(folder: Path) -> int | None:
    """A descriptor holding ``folder``'s watcher lock, or None while a watcher holds it (it is alive).

    Raises:
        TuxaiError: a part of the folder's path is a link, another user's or writable by others (U4).
    """
    folder_fd = open_path(folder)
    try:
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder_fd)
    finally:
        os.close(folder_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def start_watcher(folder: Path, lock_fd: int) -> None:
    """Start ``folder``'s watcher in the background (its own session), handing it the lock ``lock_fd`` the
    caller took (closed here: the watcher holds it from now on). Its errors go to ``watch.log`` beside the
    folder, opened under a path no other user can change, never through a link (U4).

    Raises:
        TuxaiError: a part of the folder's parent is a link, another user's or writable by others.
    """
    argv = [sys.executable, "-m", "tuxai.lifecycle.job_watch", "--fork", "--lock-fd", str(lock_fd), str(folder)]
    try:  # the watcher forks and its first process exits at once: nothing is left unwaited
        parent_fd = open_path(folder.parent)
        try:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            log_fd = os.open("watch.log", flags, 0o600, dir_fd=parent_fd)
        finally:
            os.close(parent_fd)
        with os.fdopen(log_fd, "a") as err:
            subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(lock_fd,),  # the lock goes on with the watcher when ours is closed
                start_new_session=True,  # a Ctrl-C or a closed terminal of the submit does not reach it
                check=False,
                timeout=60,
            )
    finally:
        os.close(lock_fd)


def close_run(entry: Mapping[str, object], job: PublicJob, client: Client) -> None:
    """Log the ended ``job``'s tags and metrics on the ledger ``entry``'s run and end the run, in the store the
    submit opened it in."""
    from tuxai.lifecycle.mlflow_runs import Tracker

    models = {g.uuid: g.name for g in client.gpus() if g.uuid} if any(job.gpus) else {}
    uri = entry.get("uri")
    Tracker(str(entry["experiment"]), {"MLFLOW_TRACKING_URI": str(uri)} if uri else None).close(
        str(entry["run"]), job, models
    )


@dataclasses.dataclass
class _Ledger:
    path: Path
    entry: dict[str, object]
    job: int
    home: str
    seen: float  # monotonic: when this watcher first read it


def _read(path: Path) -> _Ledger:
    entry = json.loads(path.read_text())
    if not isinstance(entry, dict) or not {"job", "home", "run", "experiment"} <= entry.keys():
        raise ValueError("it lacks a job, home, run or experiment")
    return _Ledger(path, entry, int(entry["job"]), str(entry["home"]), time.monotonic())


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # watch.log


class Watcher:
    """Follows every ledger in ``folder`` until its job ends (``run``); ``close`` ends a run; ``open_desk``
    makes the folder's run desk, kept while the watcher lives (its requests share ``mlflow_lock``)."""

    def __init__(
        self,
        folder: Path,
        close: Closer = close_run,
        lock_fd: int | None = None,
        open_desk: Callable[[], RunDesk] | None = None,
        mlflow_lock: threading.Lock | None = None,
    ) -> None:
        self.folder, self.close, self.lock_fd = folder, close, lock_fd
        self.mlflow_lock = mlflow_lock or threading.Lock()
        self.open_desk = open_desk
        self.desk = self._desk()
        self.ledgers: dict[str, _Ledger] = {}
        self.left: set[str] = set()  # ledgers given up on: left in the folder for the next watcher
        self.clients: dict[str, Client] = {}
        self.answered: dict[str, float] = {}  # a daemon's home: when it last answered (monotonic)
        self.failed = False

    def look(self) -> None:
        """Read the folder: ledgers new to it followed, those gone forgotten."""
        names = set()
        for path in sorted(self.folder.glob("*.json")):
            names.add(path.name)
            if path.name in self.ledgers or path.name in self.left:
                continue
            try:
                ledger = _read(path)
            except FileNotFoundError:
                names.discard(path.name)
            except (OSError, ValueError, LookupError, TypeError) as error:
                _say(f"{path}: not a ledger of an open run ({error!r}): left as it is")
                self.left.add(path.name)
            else:
                self.ledgers[path.name] = ledger
        for gone in set(self.ledgers) - names:
            del self.ledgers[gone]
        self.left &= names

    def poll(self) -> None:
        """Ask each daemon once for its unfinished jobs; end the runs of the ledgers' jobs not among them."""
        from tuxai.errors import TuxaiError
        from tuxai.model.job import JobState

        unfinished = [str(s) for s in JobState if not s.terminal]
        homes: dict[str, list[_Ledger]] = {}
        for ledger in self.ledgers.values():
            homes.setdefault(ledger.home, []).append(ledger)
        for home, ledgers in homes.items():
            now = time.monotonic()
            self.answered.setdefault(home, now)
            try:
                client = self._client(home)
                running = {job.id for job in client.jobs(unfinished)}
                for ledger in ledgers:
                    if ledger.job not in running:
                        self._end(client, ledger)
            except TuxaiError as error:
                if now - self.answered[home] > GIVE_UP_S:
                    _say(f"the daemon of {home} did not answer for {GIVE_UP_S:g} s: {error}")
                    self._leave(*ledgers)
            else:
                self.answered[home] = now

    def _client(self, home: str) -> Client:
        from tuxai.api.client import Client

        if home not in self.clients:
            self.clients[home] = Client.for_home(Path(home))
        return self.clients[home]

    def _leave(self, *ledgers: _Ledger) -> None:
        for ledger in ledgers:
            self.ledgers.pop(ledger.path.name, None)
            self.left.add(ledger.path.name)
        self.failed = True

    def _end(self, client: Client, ledger: _Ledger) -> None:
        from tuxai.errors import JobNotFound

        run = ledger.entry["run"]
        try:
            job = client.job(ledger.job)  # its detail: energy, memory, reason
        except JobNotFound as error:
            _say(f"job {ledger.job}: {error}: its MLflow run {run} is left open")
            self._leave(ledger)
            return
        if not job.state.terminal:
            return
        try:
            with self.mlflow_lock:
                self.close(ledger.entry, job, client)
        except Exception as error:  # noqa: BLE001 (MLflow's own too: one run's failure must not stop the others)
            _say(f"job {ledger.job}: its MLflow run {run} was not ended: {error}")
            self._leave(ledger)
            return
        ledger.path.unlink(missing_ok=True)
        del self.ledgers[ledger.path.name]

    def _may_exit(self) -> bool:
        """With the lock let go, whether the folder is still empty, else the lock taken again if no other
        watcher took it: a ledger written as we decided to go is never left without a watcher."""
        if self.desk is not None:  # no request comes in while we decide: a submit waits for the lock
            self.desk.close()
            self.desk = None
        if self.lock_fd is None:
            return True
        fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
        self.look()
        if not self.ledgers:
            return True
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True  # the submit that wrote it started another watcher
        self.desk = self._desk()
        return False

    def _desk(self) -> RunDesk | None:
        from tuxai.errors import TuxaiError

        if self.open_desk is None:
            return None
        try:
            return self.open_desk()
        except (TuxaiError, OSError) as error:  # submits open their runs themselves
            _say(f"no run desk in {self.folder}: {error}")
            return None

    def run(self, idle_s: float = IDLE_S) -> int:
        """Follow the folder's ledgers until none is left for ``idle_s``; 0, or 1 when a run was left open."""
        idle_since: float | None = None
        try:
            while True:
                self.look()
                if self.ledgers:
                    idle_since = None
                    self.poll()
                now = time.monotonic()
                if self.ledgers:
                    time.sleep(min(poll_s(now - ledger.seen) for ledger in self.ledgers.values()))
                    continue
                idle_since = now if idle_since is None else idle_since
                quiet_since = max(idle_since, self.desk.served) if self.desk is not None else idle_since
                if now - quiet_since >= idle_s and self._may_exit():
                    return 1 if self.failed else 0
                time.sleep(min(LOOK_S, idle_s))
        finally:
            if self.desk is not None:
                self.desk.close()
            for client in self.clients.values():
                client.close()


def main(argv: list[str]) -> int:
    """``[--fork] [--lock-fd FD] FOLDER``: with ``--fork``, the first process exits at once and a child
    watches; ``--lock-fd``: the folder's lock, taken by the caller (else taken here: 0 when a watcher has it)."""
    fork = "--fork" in argv
    folder = Path(argv[-1])
    given = argv[argv.index("--lock-fd") + 1] if "--lock-fd" in argv else None
    lock_fd = int(given) if given is not None else lock_watcher(folder)
    if lock_fd is None:
        return 0  # the folder's watcher is alive: it reads every ledger there
    if fork and os.fork() != 0:
        os._exit(0)  # the parent of the watcher: its caller waits for it, and for nothing more
    with contextlib.suppress(OSError):
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)
    from tuxai.lifecycle.run_desk import MlflowHandler, RunDesk, mlflow_env

    own_env, mlflow_lock = mlflow_env(), threading.Lock()  # the variables read before MLflow's import sets any
    handler = MlflowHandler(mlflow_lock)
    desk = functools.partial(RunDesk, folder, handler, own_env)
    return Watcher(folder, lock_fd=lock_fd, open_desk=desk, mlflow_lock=mlflow_lock).run()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
