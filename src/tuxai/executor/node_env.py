"""The shim's side of a job environment built on its node (issue 15): ``tuxai.envs.node`` run as the job's
user, its output into the job's log, and the job's environment pointed at what it built or reused.

The builder runs as the job's user (a requirements file can name an sdist, whose build runs code: never
as root), from ``/``, with the job's environment; the lockfile's text goes to its stdin. A build that
fails raises with the builder's last lines, which become the attempt's reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable

from tuxai.executor.rundir import Launch

TAIL_LINES = 6
TAIL_BYTES = 64 * 1024


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


def build_on_node(launch: Launch, user: tuple[int, int, tuple[int, ...]] | None, log: int) -> dict[str, str]:
    """Build or reuse ``launch.env_lock``'s environment on this node; the job's environment using it.

    The builder's output is copied to ``log`` (the job's log) as it comes.

    Raises:
        SubprocessError: the builder failed (its last lines say why) or could not start.
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
            preexec_fn=_become(user),
        )
    except OSError as exc:
        os.close(result_r)
        raise subprocess.SubprocessError(f"node {node}: cannot start the environment's builder: {exc}") from exc
    finally:
        os.close(result_w)
    assert builder.stdin is not None and builder.stdout is not None
    with contextlib.suppress(BrokenPipeError), builder.stdin:  # it reads the whole text before it writes a line
        builder.stdin.write(launch.env_lock.encode())
    tail = b""
    while chunk := os.read(builder.stdout.fileno(), 65536):
        os.write(log, chunk)
        tail = (tail + chunk)[-TAIL_BYTES:]
    builder.stdout.close()
    code = builder.wait()
    with os.fdopen(result_r, "rb") as result:
        venv = result.read().decode(errors="replace").strip()
    if code != 0 or not venv:
        last = " | ".join(line for line in tail.decode(errors="replace").splitlines()[-TAIL_LINES:] if line.strip())
        raise subprocess.SubprocessError(f"the job environment could not be built on node {node}: {last}")
    return with_env(launch.env, venv)
