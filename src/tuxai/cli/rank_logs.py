"""``tuxai logs JOB`` of a multi-node job: every node's output, each line prefixed with its rank.

Each node of a gang writes its own log (rank 0 the job's ``output.log``, rank ``r``
``output.rank<r>.log``); ``--rank R`` prints one of them byte for byte. Without it the ranks
are read in turns and each complete line is printed as ``[rank R] …`` as it arrives (``-f``:
until the job ends), so lines of different nodes interleave in the order they were read.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, BinaryIO

from tuxai.cli.logs import last_lines

if TYPE_CHECKING:
    from tuxai.api.client import Client


def prefixed(rank: int, data: bytes, partial: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines of ``partial + data`` each prefixed ``[rank R] ``, and what is left unfinished.

    >>> prefixed(1, b"b\\nc", b"a")
    ([b'[rank 1] ab\\n'], b'c')
    """
    text = partial + data
    *lines, rest = text.split(b"\n")
    return [b"[rank %d] %s\n" % (rank, line) for line in lines], rest


def print_ranks(api: Client, job_id: int, nodes: int, follow: bool, tail: int | None, poll_s: float = 0.2) -> int:
    """Every rank's output, prefixed, in turns; ``tail``: the last lines of it; ``follow``: until the job ends."""
    out: BinaryIO = sys.stdout.buffer
    offsets, partial = [0] * nodes, [b""] * nodes
    kept: list[bytes] = []
    while True:
        read_any, ended = False, False
        for rank in range(nodes):
            data, offsets[rank], state = api.log(job_id, offsets[rank], rank=rank)
            ended = ended or state.terminal
            if data:
                read_any = True
                lines, partial[rank] = prefixed(rank, data, partial[rank])
                if tail is not None and not follow:
                    kept = last_lines([*kept, *lines], tail) if tail else []
                else:
                    out.writelines(lines)
                    out.flush()
        if read_any:
            continue
        if not follow or ended:
            break
        time.sleep(poll_s)
    ends = [b"[rank %d] %s\n" % (r, p) for r, p in enumerate(partial) if p]  # last lines without a newline
    out.writelines(last_lines([*kept, *ends], tail) if tail is not None and not follow else ends)
    out.flush()
    return 0
