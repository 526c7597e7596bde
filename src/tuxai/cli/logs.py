"""``tuxai logs JOB [--tail N] [-f]``: a job's output, its last lines, or followed as it is written.

The output goes to stdout byte for byte; what tuxai says about the job (it waits, and why; it
started) goes to stderr, so ``tuxai logs -f 12 > out.txt`` holds the job's output only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from tuxai.cli.log_tail import tail_of
from tuxai.errors import UsageError
from tuxai.model.job import JobState

if TYPE_CHECKING:
    from tuxai.api.client import Client


def _output(api: Client, job_id: int, offset: int = 0, rank: int = 0) -> Iterator[bytes]:
    """The job's output written so far (node ``rank``'s), from ``offset``, in the daemon's chunks."""
    while True:
        data, offset, _ = api.log(job_id, offset, rank=rank)
        if not data:
            return
        yield data


def _say(text: str) -> None:
    from tuxai.cli.jobs import printable  # a job's reason may hold its user's text

    print(printable(text), file=sys.stderr, flush=True)


def _wait_to_start(api: Client, job_id: int, poll_s: float) -> None:
    """While the job waits: say so, and why (again when the reason changes); return once it runs or ended."""
    said = None
    while True:
        job = api.job(job_id)
        if job.state != JobState.PENDING:
            if said is not None:
                _say(f"job {job_id} {job.state.value}: following its output")
            return
        reason = job.reason or "waiting for its turn"
        if reason != said:
            _say(f"job {job_id} is pending, {reason}; its output follows once it starts")
            said = reason
        time.sleep(poll_s)


def print_log(api: Client, job_id: int, follow: bool, tail: int | None, poll_s: float = 0.5, rank: int = 0) -> int:
    """Print the job's output (``tail``: its last lines; ``rank``: a multi-node job's node); ``follow``: wait
    for a pending job to start (saying why it waits), then print as it comes until the job ends.

    Raises:
        UsageError: ``tail`` below 0.
    """
    if tail is not None and tail < 0:
        raise UsageError(f"--tail must be 0 or more, got {tail}", hint="e.g. --tail 20")
    out: BinaryIO = sys.stdout.buffer
    if follow:
        _wait_to_start(api, job_id, poll_s)
    elif (job := api.job(job_id)).state == JobState.PENDING:
        _say(f"job {job_id} has not started: it is pending, {job.reason or 'waiting for its turn'}")
        return 0
    offset = 0
    if tail is not None:  # read back from the log's end (``cli.log_tail``): its last lines cost what they are
        lines, partial, offset = tail_of(api, job_id, rank, tail)
        shown = [*lines, partial] if partial else lines
        out.writelines(shown[len(shown) - tail :] if tail else [])
    elif not follow:
        out.writelines(_output(api, job_id, rank=rank))
    out.flush()
    while follow:  # as api.follow does, from where the tail ended
        data, offset, state = api.log(job_id, offset, rank=rank)
        if data:
            out.write(data)
            out.flush()
        elif state.terminal:
            break
        else:
            time.sleep(0.2)
    return 0
