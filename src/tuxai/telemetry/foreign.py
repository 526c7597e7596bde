"""Processes on a GPU that tuxai did not start: a GPU "busy outside tuxai".

A GPU process is tuxai's when it, or one of its ancestors, is among the processes of a running
job (the job's process group, as ``procfs.group_usage`` finds it); anything else on a GPU — a
notebook started by hand, another scheduler's job — is foreign. Its user is read from
``/proc/PID/status`` (the real uid) where the pid is visible; else the sampler's word (a simulated
inventory's declaration); else unknown.
"""

from __future__ import annotations

import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tuxai.telemetry.samples import GpuSample

_MAX_HOPS = 64  # ancestors looked at before a process is called foreign


@dataclass(frozen=True)
class ForeignProcess:
    """A compute process on GPU ``gpu_index`` that no running job owns."""

    gpu_index: int
    pid: int
    user: str  # "" when nobody can tell
    memory_bytes: int | None = None
    mig_index: int | None = None  # the MIG instance it runs on; None: the whole GPU is busy

    def words(self) -> str:
        """``pid 4242 of alice`` (``pid 4242`` when the user is unknown)."""
        return f"pid {self.pid} of {self.user}" if self.user else f"pid {self.pid}"


def process_uid(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The real uid of ``pid`` from ``/proc/PID/status`` (``Uid:\\t1000\\t1000\\t…`` → 1000), None if unseen."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def user_name(uid: int) -> str:
    """The login name of ``uid``, else the number."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def parent_pid(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The parent of ``pid`` from ``/proc/PID/stat`` (after the command's closing parenthesis), None if unseen."""
    try:
        text = (proc / str(pid) / "stat").read_text()
        return int(text[text.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _owned(pid: int, jobs_pids: frozenset[int], proc: Path) -> bool:
    current: int | None = pid
    for _ in range(_MAX_HOPS):
        if current is None or current <= 1:
            return False
        if current in jobs_pids:
            return True
        current = parent_pid(current, proc)
    return False


def foreign_processes(
    samples: Iterable[GpuSample],
    jobs_pids: Iterable[int],
    proc: Path = Path("/proc"),
    instances: Mapping[tuple[int, int], int] | None = None,
) -> list[ForeignProcess]:
    """The processes on each GPU that are not a running job's (nor a descendant of one).

    ``instances``: (GPU index, MIG GPU instance id) → the MIG instance's index, so a process on
    one MIG instance keeps only that instance busy (one on an instance not found: the whole GPU).
    """
    owned = frozenset(jobs_pids)
    found = []
    for sample in samples:
        for process in sample.processes:
            if _owned(process.pid, owned, proc):
                continue
            uid = process_uid(process.pid, proc)
            user = user_name(uid) if uid is not None else (process.user or "")
            mig = None
            if process.gpu_instance_id is not None:
                mig = (instances or {}).get((sample.index, process.gpu_instance_id))
            found.append(ForeignProcess(sample.index, process.pid, user, process.memory_bytes, mig))
    return found


def busy_outside(found: Iterable[ForeignProcess]) -> Mapping[int | tuple[int, int], str]:
    """Who keeps a GPU busy outside tuxai, by GPU index — or by (GPU index, MIG instance index) for
    a process on one MIG instance: ``{3: "pid 4242 of alice, pid 77 of bob", (0, 2): "pid 9"}``."""
    words: dict[int | tuple[int, int], list[str]] = {}
    for process in found:
        key = process.gpu_index if process.mig_index is None else (process.gpu_index, process.mig_index)
        words.setdefault(key, []).append(process.words())
    return {key: ", ".join(sorted(set(each))) for key, each in words.items()}
