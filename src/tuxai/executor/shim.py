"""The shim: one per attempt, in its own session; it owns the job's process group and cgroup.

``python -m tuxai.executor.shim [--detach] RUN_DIR`` (or forked by the launcher). It takes
the attempt (lock, then claim — see ``rundir``), starts the job with its environment, CPU
affinity, cgroup limits and user, enforces the time limit, turns SIGTERM from the daemon
into SIGTERM → grace → SIGKILL of the job's process group, and writes the outcome to
``status.json``. It does not need the daemon: it outlives it.

Running as root for another user, it makes the job's files itself (``executor.files``: no
link followed, owned by the user) from the paths in ``launch.json`` — never from the job's
environment — and enters the working directory as the user. It is a child subreaper: a
process the job detaches (``setsid``, a double fork) is still its descendant, and dies with
the job even without a cgroup.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from tuxai.executor import cgroups, node_env, podman, systemd, userdir
from tuxai.executor.files import make_dir, open_user_file
from tuxai.executor.processes import boot_id, descendants, start_ticks
from tuxai.executor.rundir import (
    CHECKPOINT,
    ENDPOINT,
    LOCK,
    Launch,
    Phase,
    Status,
    claim,
    make_reserve,
    read_launch,
    read_stop,
    write_status,
)
from tuxai.executor.session import Session
from tuxai.model.job import StopReason

EXIT_CANNOT_START = 127
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphaned descendants come back to this process instead of init (best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class Shim:
    """One attempt of one job, from start to recorded exit."""

    def __init__(self, run_dir: Path, launch: Launch) -> None:
        self.run_dir, self.launch = run_dir, launch
        self.stop_reason: StopReason | None = None
        self.kill_at: float | None = None
        self.pgid: int | None = None
        self.timed_out = False
        self._errors_w = -1  # the child's end of a pipe that says why it could not start
        self.session: Session | None = None  # an interactive job's terminal and attach socket
        self.oom_events: int | None = None  # cgroups.watch_oom's eventfd
        self.wake = -1  # the read end of the signals' wake fd (a node's env build selects on it too)

    def _status(self, phase: Phase, durable: bool = False, **fields: object) -> None:
        write_status(self.run_dir, Status(phase, os.getpid(), **fields), durable)  # type: ignore[arg-type]

    def _notify(self) -> None:
        if not self.launch.notify_socket:
            return
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(str(self.launch.job_id).encode(), self.launch.notify_socket)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.begin_stop(read_stop(self.run_dir) or StopReason.SHUTDOWN)

    def begin_stop(self, reason: StopReason) -> None:
        """SIGTERM to the job's process group (and what it detached) now, SIGKILL after the grace period."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.pgid is not None and self.kill_at is None:
            if self.session is not None:
                self.session.hang_up()
            self._signal_all(signal.SIGTERM)
            self.kill_at = time.monotonic() + self.launch.grace_s

    def _signal_all(self, signum: int) -> None:
        """``signum`` to the job's process group, its cgroup and every descendant of this shim.

        The processes are listed before the group is signalled: one the signal itself starts (podman's
        ``runc kill`` that forwards it into the container) is not signalled again, which killed the
        forwarder before it forwarded."""
        pids = set(descendants(os.getpid()))
        if self.launch.cgroup:
            pids.update(cgroups.pids(self.launch.cgroup))
        pids.discard(os.getpid())
        if self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signum)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def _kill_leftovers(self) -> None:
        """SIGKILL what the job left (its group, detached descendants), and reap the orphans."""
        for _ in range(50):
            self._signal_all(signal.SIGKILL)
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    break
            time.sleep(0.01)

    def _preexec(self, user: tuple[int, int, tuple[int, ...]] | None) -> None:
        """In the child, before ``exec``: join the cgroup and pin the CPUs (as root), become the
        user, then enter the working directory as the user (security issue A8)."""
        if self.session is not None:
            self.session.in_child()
        if self.launch.cgroup:
            cgroups.attach(self.launch.cgroup, os.getpid())
        if self.launch.cpus:
            os.sched_setaffinity(0, self.launch.cpus)
        if user is not None:
            uid, gid, groups = user
            os.setgroups(list(groups))
            if self.launch.cgroup.systemd is not None:
                return  # systemd-run asks for the scope as root, then switches (--uid, --gid, env -C)
            os.setgid(gid)
            os.setuid(uid)
        if self.launch.cwd and user is not None:
            try:
                os.chdir(self.launch.cwd)
            except OSError as exc:  # subprocess says only "Exception occurred in preexec_fn"
                message = f"cannot enter working directory {self.launch.cwd}: {exc.strerror}"
                os.write(self._errors_w, message.encode())
                raise

    def _job_files(self, owner: tuple[int, int] | None) -> int:
        """Make the job's log, checkpoint directory and endpoint file, owned by ``owner``; the log's fd."""
        launch = self.launch
        if launch.job_dir:
            job_dir = Path(launch.job_dir)
            make_dir(job_dir / CHECKPOINT, 0o700, owner)
            os.close(open_user_file(job_dir / ENDPOINT, owner, fresh=True))
        return open_user_file(Path(launch.log_path), owner)

    def _switch_to(self) -> tuple[int, int, tuple[int, ...]] | None:
        """The user the job becomes (None: this process's own, which the job asked for or named none).

        Raises:
            SubprocessError: the job is another uid's and this shim, not root, cannot become it: refused,
                never run as this process's user (security issue S1: a Ray worker's shared account).
        """
        wanted, uid = self.launch.user, os.getuid()
        if wanted is None or wanted[0] == uid:
            return None
        if uid != 0:
            raise subprocess.SubprocessError(
                f"job {self.launch.job_id} runs as uid {wanted[0]} and this shim as uid {uid}, which cannot switch "
                "users: refused (the daemon, or the cluster's workers, must run as root to run others' jobs)"
            )
        return wanted

    def _building(self, pid: int) -> None:
        """Record a node's env builder as the attempt's process group: ``kill_lost`` reaches it."""
        self._status(Phase.STARTING, pgid=pid, boot_id=boot_id(), start_ticks=start_ticks(pid))

    def _spawn(self) -> subprocess.Popen[bytes]:
        launch = self.launch
        user = self._switch_to()
        if launch.container is not None and launch.container.error:
            raise subprocess.SubprocessError(launch.container.error)
        log = self._job_files(None if user is None else (user[0], user[1]))
        if launch.note:  # e.g. a cluster node that runs the rank without a cgroup (executor.node_cgroups)
            os.write(log, launch.note.encode() + b"\n")
        errors_r, self._errors_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            owner = None if user is None else (user[0], user[1])
            if launch.session:
                self.session = Session(launch.session, Path(launch.job_dir), owner, log)
            stdio = self.session.child_fds if self.session else (subprocess.DEVNULL, log, subprocess.STDOUT)
            pty = self.session is not None and self.session.mode == "pty"
            command, env, cwd = list(launch.command), launch.env, launch.cwd or None
            if launch.env_lock:  # a cluster node builds or reuses the job's env from its lockfile (issue 15)
                stop = (self.wake, launch.grace_s, lambda: self.stop_reason is not None)
                env = node_env.build_on_node(launch, user, log, stop, self._building)
            if launch.container is not None:  # podman runs as root and makes the user inside (executor.podman)
                argv, dropped = podman.prepare(launch, launch.container, self.run_dir, self.session is not None, pty)
                # podman's own files (conmon leaves "oom" where it runs) go to the run directory
                command, env, cwd, user = argv + command, podman.podman_environment(), str(self.run_dir), None
                if dropped:
                    print(f"job {launch.job_id}: not passed into the container: {', '.join(dropped)}", file=sys.stderr)
            needed = bool(launch.cgroup or launch.cpus or user or pty)
            if launch.cgroup.systemd is not None:
                command = systemd.run_argv(launch.cgroup, owner, launch.cwd if user is not None else "") + command
            return subprocess.Popen(
                command,
                stdin=stdio[0],
                stdout=stdio[1],
                stderr=stdio[2],
                # As another user, the directory is entered after the switch (in _preexec):
                # Popen's cwd= would enter it as root (security issue A8).
                cwd=cwd if user is None else None,
                env=env,
                process_group=None if pty else 0,
                start_new_session=pty,  # a terminal's job leads its own session: the terminal is its own
                preexec_fn=(lambda: self._preexec(user)) if needed else None,
            )
        except subprocess.SubprocessError as exc:
            with contextlib.suppress(BlockingIOError):
                why = os.read(errors_r, 4096).decode(errors="replace")
                if why:
                    raise subprocess.SubprocessError(why) from exc
            raise
        finally:
            for fd in (log, errors_r, self._errors_w):
                os.close(fd)

    def run(self) -> int:
        """Start the job, wait for it, record the outcome. Returns the shim's exit code (0)."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake = wake_r
        signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self._status(Phase.STARTING)
        make_reserve(self.run_dir)
        become_subreaper()
        stopped = read_stop(self.run_dir)
        if stopped is not None:
            self._status(
                Phase.EXITED, durable=True, stop_reason=stopped, ended_at=time.time(), error="stopped before start"
            )
            self._notify()
            return 0
        launch = self.launch
        try:
            if launch.cgroup:
                limits = cgroups.Limits(launch.memory_limit_bytes, launch.cpu_quota, launch.pids_max, launch.cpus)
                cgroups.create(launch.cgroup, limits, list(launch.devices) or None)
                self.oom_events = cgroups.watch_oom(launch.cgroup) if launch.memory_limit_bytes else None
            process = self._spawn()
        except (OSError, subprocess.SubprocessError) as exc:
            if launch.cgroup:
                cgroups.kill_and_remove(launch.cgroup)
            if launch.container is not None:  # podman.prepare bound the user's directory: never left bound (T3)
                userdir.unbind(podman.container_name(self.run_dir))
            if self.session is not None:
                self.session.close()
            self._status(
                Phase.EXITED,
                durable=True,
                exit_code=EXIT_CANNOT_START,
                stop_reason=self.stop_reason,  # e.g. a cancel during a node's env build
                ended_at=time.time(),
                error=f"cannot start {launch.command[0]!r}: {exc}",
            )
            self._notify()
            return 0
        started_at, started = time.time(), time.monotonic()
        self.pgid = process.pid
        if self.session is not None:
            self.session.started(process.pid)
        boot, ticks = boot_id(), start_ticks(process.pid)
        self._status(
            Phase.RUNNING, pid=process.pid, pgid=process.pid, started_at=started_at, boot_id=boot, start_ticks=ticks
        )
        if self.stop_reason is not None:  # a SIGTERM arrived while starting
            self.begin_stop(self.stop_reason)
        status, rusage = self._wait(process.pid, started, wake_r)
        ended_at = time.time()
        self._kill_leftovers()  # what the job left behind: its group, its cgroup, what it detached
        usage = cgroups.stats(launch.cgroup) if launch.cgroup else cgroups.CgroupStats()
        oom = usage.oom_killed or cgroups.oom_seen(self.oom_events)  # before the group goes: its removal signals too
        if launch.container is not None:  # podman's groups under the job's first: the job's then go at once
            podman.remove_container(self.run_dir)
            podman.remove_groups(launch.cgroup)
        if launch.cgroup:
            cgroups.kill_and_remove(launch.cgroup)
        code = os.waitstatus_to_exitcode(status)
        self._status(
            Phase.EXITED,
            durable=True,
            pid=process.pid,
            pgid=process.pid,
            started_at=started_at,
            ended_at=ended_at,
            exit_code=code if code >= 0 else None,
            signal=-code if code < 0 else None,
            oom_killed=oom,
            timed_out=self.timed_out,
            stop_reason=self.stop_reason,
            wall_s=round(ended_at - started_at, 6),
            cpu_s=usage.cpu_s if usage.cpu_s is not None else round(rusage.ru_utime + rusage.ru_stime, 6),
            max_rss_bytes=max(rusage.ru_maxrss * 1024, usage.max_memory_bytes or 0),
            boot_id=boot,
            start_ticks=ticks,
        )
        self._notify()
        if self.session is not None:  # after the status: a client that sees the exit finds the job ended
            self.session.finish(code if code >= 0 else None, -code if code < 0 else None)
        return 0

    def _wait(self, pid: int, started: float, wake: int) -> tuple[int, resource.struct_rusage]:
        """Wait for the job, enforcing the time limit and the grace period."""
        pidfd = os.pidfd_open(pid)
        deadline = None if self.launch.time_limit_s is None else started + self.launch.time_limit_s
        try:
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline and not self.timed_out:
                    self.timed_out = True
                    self.begin_stop(StopReason.TIMEOUT)
                if self.kill_at is not None and now >= self.kill_at:
                    self._signal_all(signal.SIGKILL)
                    self.kill_at = None
                moments = [t for t in (None if self.timed_out else deadline, self.kill_at) if t is not None]
                timeout = max(0.0, min(moments) - now) if moments else None
                session = self.session
                readers = [pidfd, wake, *(session.readers() if session else ())]
                ready, writable, _ = select.select(readers, session.writers() if session else [], [], timeout)
                if session is not None:
                    session.step(ready, writable)
                if wake in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake, 512)
                if pidfd in ready:
                    _, status, rusage = os.wait4(pid, 0)
                    return status, rusage
        finally:
            os.close(pidfd)


def run_attempt(run_dir: Path) -> int:
    """Lock, claim and run the attempt in ``run_dir``; 0 also when the daemon abandoned it."""
    lock = os.open(run_dir / LOCK, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not claim(run_dir):
        return 0  # the daemon gave this attempt up before we got here
    return Shim(run_dir, read_launch(run_dir)).run()


def detach() -> bool:
    """Double fork into a new session; True in the grandchild, which goes on."""
    if os.fork() != 0:
        return False
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    return True


def main(argv: list[str]) -> int:
    """``python -m tuxai.executor.shim [--detach] RUN_DIR``."""
    if not argv or argv[-1].startswith("-"):
        print("usage: python -m tuxai.executor.shim [--detach] RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[-1])
    if "--detach" in argv and not detach():
        return 0
    return run_attempt(run_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
