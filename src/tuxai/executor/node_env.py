"""The shim's side of a job environment built on its node (issue 15): ``tuxai.envs.node`` run as the job's
user, its output into the job's log, and the job's environment pointed at what it built or reused.

The builder runs as the job's user (a requirements file can name an sdist, whose build runs code: never
as root), from ``/``, with the job's environment; the lockfile's text goes to its stdin. A build that
fails raises with the builder's last lines, which become the attempt's reason.

The build is part of the rank: it runs in the rank's groups (its limits hold it; a kill of the group
reaches it), and in its own process group, which the shim records (``started``) so that ``kill_lost``
reaches a lost shim's builder. A stop that arrives during the build (the shim's wake fd) ends it as a
job's stop does: SIGTERM to its process group, SIGKILL after the grace.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from tuxai.executor import cgroups
from tuxai.executor.rundir import Launch
from tuxai.model.cgroup import CgroupPlan

TAIL_LINES = 6
TAIL_BYTES = 64 * 1024

Stop = tuple[int, float, Callable[[], bool]]
"""How a build is stopped: the shim's wake fd (-1: none), the job's grace, and whether a stop was asked."""
NO_STOP: Stop = (-1, 0.0, lambda: False)


def _become(user: tuple[int, int, tuple[int, ...]] | None) -> Callable[[], None] | None:
    """The child's switch to ``user`` before exec (None: stay this process's user)."""
    if user is None:
        return None
    uid, gid, groups = user

    def switch() -> None:
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)

    return switch


def _enter(cgroup: CgroupPlan, user: tuple[int, int, tuple[int, ...]] | None) -> Callable[[], None] | None:
    """The child's join of the rank's groups (as root), then its switch to ``user``, before exec."""
    switch = _become(user)
    if not cgroup or cgroup.systemd is not None:  # a systemd scope exists only once the job starts in it
        return switch

    def enter() -> None:
        cgroups.attach(cgroup, os.getpid())
        if switch is not None:
            switch()

    return enter


def _copy_until_done(builder: subprocess.Popen[bytes], log: int, stop: Stop) -> tuple[bytes, bool]:
    """Copy the builder's output to ``log`` until it ends; stopped (SIGTERM, the grace, SIGKILL to its
    process group) once ``stop`` says so. Its last bytes, and whether it was stopped."""
    assert builder.stdout is not None
    out, wake, grace_s, stopping = builder.stdout.fileno(), *stop
    tail, kill_at = b"", None
    while True:
        timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic())
        ready, _, _ = select.select([out, *([wake] if wake >= 0 else [])], [], [], timeout)
        if wake in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake, 512)  # the shim's own loop reads its signals' bytes only after the build
        if kill_at is None and stopping():
            kill_at = time.monotonic() + grace_s
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(builder.pid, signal.SIGTERM)
        elif kill_at is not None and time.monotonic() >= kill_at:
            kill_at = time.monotonic() + 0.1  # again until its output closes
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(builder.pid, signal.SIGKILL)
        if out in ready:
            chunk = os.read(out, 65536)
            if not chunk:
                return tail, kill_at is not None
            os.write(log, chunk)
            tail = (tail + chunk)[-TAIL_BYTES:]


def with_env(env: dict[str, str], venv: str) -> dict[str, str]:
    """``env`` with ``venv`` as its virtual environment, in place of the one it named (the submitter's).

    >>> with_env({"VIRTUAL_ENV": "/a", "PATH": "/a/bin:/usr/bin"}, "/n")
    {'VIRTUAL_ENV': '/n', 'PATH': '/n/bin:/usr/bin'}
    """
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    old = env.get("VIRTUAL_ENV")
    if old and path.startswith(f"{old}/bin:"):
        path = path[len(old) + 5 :]
    return {**env, "VIRTUAL_ENV": venv, "PATH": f"{venv}/bin:{path}"}


def build_on_node(
    launch: Launch,
    user: tuple[int, int, tuple[int, ...]] | None,
    log: int,
    stop: Stop = NO_STOP,
    started: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Build or reuse ``launch.env_lock``'s environment on this node; the job's environment using it.

    The builder's output is copied to ``log`` (the job's log) as it comes. ``stop``: how a stop asked
    during the build reaches it; ``started``: told the builder's pid (the leader of its process group).

    Raises:
        SubprocessError: the builder failed (its last lines say why), could not start, or was stopped.
    """
    result_r, result_w = os.pipe2(os.O_CLOEXEC)
    node = launch.node or "this machine"
    argv = [sys.executable, "-m", "tuxai.envs.node", "--cache", launch.env_cache, "--node", node]
    try:
        builder = subprocess.Popen(
            [*argv, "--result-fd", str(result_w)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd="/",
            env={**launch.env, "PYTHONUNBUFFERED": "1"},
            pass_fds=(result_w,),
            process_group=0,
            preexec_fn=_enter(launch.cgroup, user),
        )
    except OSError as exc:
        os.close(result_r)
        raise subprocess.SubprocessError(f"node {node}: cannot start the environment's builder: {exc}") from exc
    finally:
        os.close(result_w)
    assert builder.stdin is not None and builder.stdout is not None
    if started is not None:
        started(builder.pid)
    with contextlib.suppress(BrokenPipeError), builder.stdin:  # it reads the whole text before it writes a line
        builder.stdin.write(launch.env_lock.encode())
    tail, stopped = _copy_until_done(builder, log, stop)
    builder.stdout.close()
    code = builder.wait()
    with os.fdopen(result_r, "rb") as result:
        venv = result.read().decode(errors="replace").strip()
    if stopped:
        raise subprocess.SubprocessError(f"stopped while the job environment was being built on node {node}")
    if code != 0 or not venv:
        last = " | ".join(line for line in tail.decode(errors="replace").splitlines()[-TAIL_LINES:] if line.strip())
        raise subprocess.SubprocessError(f"the job environment could not be built on node {node}: {last}")
    return with_env(launch.env, venv)
