"""A job's directory: made fresh for each job, read safely by the daemon, removed with the job.

    <home>/jobs/<id>/ (or <id>.<n>)   0711, the daemon's: output.log, checkpoint/ and
                                      endpoint are the user's; run-<n>/ the local executor's
                                      (an attempt each: the daemon names the job's directory
                                      in the ``Launch``, the executor makes its attempts there)

What the daemon reads there it reads as ``executor.files`` says (no link, no FIFO, the
job's own regular file, a bounded number of bytes): the directory's files are the user's.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from tuxai.errors import StoreError, UsageError
from tuxai.executor.files import make_dir, read_user_file
from tuxai.executor.rundir import ENDPOINT, rank_output
from tuxai.model.job import JobRecord, JobState

ENDPOINT_MAX_BYTES = 4096


def new_job_dir(home: Path, job_id: int) -> Path:
    """A directory no job ever had (security issue D4: an emptied store reuses ids).

    ``jobs/<id>``, or ``jobs/<id>.<n>`` when that name was taken by an earlier store.
    Both levels are the daemon's and 0711: a user reaches only the files inside that are
    theirs (``executor.files``), and can rename or plant nothing.

    Raises:
        StoreError: ten thousand names are taken.
    """
    jobs = home / "jobs"
    make_dir(jobs, 0o711)
    for n in range(10_000):
        job_dir = jobs / (str(job_id) if n == 0 else f"{job_id}.{n}")
        try:
            make_dir(job_dir, 0o711, exclusive=True)
        except FileExistsError:
            continue
        return job_dir
    raise StoreError(f"no free directory for job {job_id} under {jobs}", hint="clean up old job directories")


def remove_job_dir(home: Path, job: JobRecord) -> None:
    """Remove an ended job's directory (only one directly under ``<home>/jobs``, never a link)."""
    if not job.log_path:
        return
    job_dir = Path(job.log_path).parent
    if job_dir.parent == (home / "jobs").resolve() and not job_dir.is_symlink():
        shutil.rmtree(job_dir, ignore_errors=True)  # fd-based: no link inside is followed


ENDPOINT_MAX_BYTES = 4096


def job_endpoint(job: JobRecord) -> str | None:
    """A served model's URL, which the job wrote to its ``$TUXAI_ENDPOINT_FILE`` (``submit --serve``).

    Read as ``executor.files`` reads a user's file: no link, no FIFO, the job's own, 4 KiB
    at most (security issues A6, A7); anything but one ``http(s)://`` line shows as nothing.
    """
    if job.state is not JobState.RUNNING or not job.log_path:
        return None
    data = read_user_file(Path(job.log_path).parent / ENDPOINT, (job.uid, os.geteuid()), ENDPOINT_MAX_BYTES)
    text = (data or b"").decode("utf-8", "replace").strip()
    if not text.startswith(("http://", "https://")) or any(c.isspace() or not c.isprintable() for c in text):
        return None
    return text


def read_log(job: JobRecord, offset: int, limit_bytes: int, rank: int = 0) -> bytes:
    """Up to ``limit_bytes`` of the job's output from ``offset`` (the job's own regular file only;
    ``rank``: a multi-node job's node, ``executor.rundir.rank_output``).

    Raises:
        UsageError: the job has no node ``rank``.
    """
    path = _log_file(job, rank)
    return read_user_file(path, (job.uid, os.geteuid()), limit_bytes, offset) or b"" if path else b""


def log_size(job: JobRecord, rank: int = 0) -> int:
    """The size of the job's output now (node ``rank``'s; 0 where it is not the job's own regular file):
    where a reader of its last lines starts from (``tuxai logs --tail``).

    Raises:
        UsageError: the job has no node ``rank``.
    """
    path = _log_file(job, rank)
    try:
        info = os.stat(path, follow_symlinks=False) if path else None  # no open: a FIFO cannot block it
    except OSError:
        return 0
    owned = info is not None and stat.S_ISREG(info.st_mode) and info.st_uid in (job.uid, os.geteuid())
    return info.st_size if info is not None and owned else 0


def _log_file(job: JobRecord, rank: int) -> Path | None:
    """Where node ``rank`` of the job writes its output (None: the job has no log)."""
    if not 0 <= rank < max(1, job.spec.nodes):
        raise UsageError(f"job {job.id} runs on {job.spec.nodes} node(s): its ranks are 0 to {job.spec.nodes - 1}")
    return Path(job.log_path).with_name(rank_output(rank)) if job.log_path else None
