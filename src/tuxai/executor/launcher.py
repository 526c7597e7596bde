"""The launcher: a small fork server that starts shims in about a millisecond.

Starting ``python -m tuxai.executor.shim`` costs ~20 ms of CPU per job; the launcher pays
the interpreter start once, then for each run directory it reads on stdin it forks a
shim into a session of its own and goes back to reading. It ignores SIGCHLD, so the
kernel reaps its shims; when it exits (the daemon closed the pipe, or died) they are
handed to init and go on. It is single-threaded, so forking it is safe.
``python -m tuxai.executor.launcher``.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path

from tuxai.executor.rundir import SHIM_LOG
from tuxai.executor.shim import run_attempt


def _start(run_dir: Path) -> None:
    if os.fork() != 0:
        return
    code = 70
    try:
        os.setsid()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(run_dir / SHIM_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = run_attempt(run_dir)
    except BaseException:  # noqa: BLE001 (the forked child must reach os._exit whatever happens)
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def serve() -> int:
    """Read run directories, one per line, until the daemon closes stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on `tuxai up` stops the daemon; it closes us
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies: the kernel reaps the shims
    for line in sys.stdin.buffer:
        text = line.decode().strip()
        if text:
            _start(Path(text))
    return 0


if __name__ == "__main__":
    sys.exit(serve())
