"""A Slurm attempt's nodes' statuses, as root reads them (``executor.slurm``).

Everything under ``<run dir>/node-<rank>/`` is the job's user's: ``run-<restart>/status.json``,
written by the shim the user runs. Root reads it as the user's: only ``run-<digits>`` names, the
directory opened without following a link, the file capped and read as files.py reads a user's,
each field of the type ``Status`` declares (else its default). A malformed file is no status,
never an exception in the daemon's pass.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import fields
from pathlib import Path

from tuxai.executor.files import read_user_file
from tuxai.executor.rundir import STATUS, Phase, Status
from tuxai.model.job import StopReason

MAX_STATUS_BYTES = 65536
RUN_NAME = re.compile(r"run-([0-9]{1,9})")  # a node's run directory: run-<SLURM_RESTART_COUNT>


def node_statuses(run_dir: Path, nodes: int) -> list[Status]:
    """The exit statuses the attempt's ``nodes`` recorded (each node's latest run), in rank order."""
    statuses = []
    for rank in range(nodes):
        node = run_dir / f"node-{rank}"  # root's name in root's directory: never swapped
        runs: list[int] = []
        with contextlib.suppress(OSError):
            runs = [int(m[1]) for name in os.listdir(node) if (m := RUN_NAME.fullmatch(name))]
        status = _read_status(node, f"run-{max(runs)}") if runs else None
        if status is not None and status.phase is Phase.EXITED:
            statuses.append(status)
    return statuses


def _read_status(node: Path, name: str) -> Status | None:
    """A node's ``<name>/status.json``, which its user owns: the directory opened without following
    a link, the file read capped, each field of the type it has (else its default)."""
    try:
        fd = os.open(node / name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = read_user_file(Path(STATUS), (os.fstat(fd).st_uid, os.geteuid()), MAX_STATUS_BYTES, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        data = json.loads(raw) if raw is not None else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("phase") not in tuple(Phase):
        return None
    typed = {f.name: _typed(data.get(f.name), KINDS[f.name], f.default) for f in fields(Status) if f.name in KINDS}
    reason = data.get("stop_reason")
    stop = StopReason.parse(reason if isinstance(reason, str) else None)
    return Status(Phase(data["phase"]), 0, **typed, stop_reason=stop)  # type: ignore[arg-type]


KINDS: dict[str, tuple[type, ...]] = {  # the types of the Status fields a node writes
    **dict.fromkeys(("started_at", "ended_at", "wall_s", "cpu_s"), (int, float)),
    **dict.fromkeys(("pid", "pgid", "exit_code", "signal", "max_rss_bytes", "start_ticks"), (int,)),
    **dict.fromkeys(("oom_killed", "timed_out"), (bool,)),
    **dict.fromkeys(("error", "boot_id"), (str,)),
}


def _typed(value: object, kinds: tuple[type, ...], default: object) -> object:
    """``value`` when it is of ``kinds`` (a number: finite, never a bool), else ``default``.

    >>> _typed("x", (int, float), None), _typed(True, (int,), None), _typed(2.5, (int, float), None)
    (None, None, 2.5)
    """
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        return default
    if isinstance(value, float) and not math.isfinite(value):
        return default
    return value
