"""The launcher: a small fork server that starts shims in about a millisecond.

Starting ``python -m tuxai.executor.shim`` costs ~20 ms of CPU per job; the launcher pays
the interpreter start once, then for each run directory it reads on stdin it forks
twice (the shim gets its own session and is nobody's child) and goes back to reading.
It is single-threaded, so forking it is safe, and it exits when the daemon closes the
pipe (the shims it started go on). ``python -m tuxai.executor.launcher``.
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
    pid = os.fork()
    if pid != 0:
        os.waitpid(pid, 0)
        return
    code = 70
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        for signum in (signal.SIGINT, signal.SIGTERM):
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
    for line in sys.stdin.buffer:
        text = line.decode().strip()
        if text:
            _start(Path(text))
    return 0


if __name__ == "__main__":
    sys.exit(serve())
