"""``tuxai logs JOB`` of a multi-node job: every node's output, each line prefixed with its rank.

Each node of a gang writes its own log (rank 0 the job's ``output.log``, rank ``r``
``output.rank<r>.log``); ``--rank R`` prints one of them byte for byte. Without it the ranks
are read in turns and each complete line is printed as ``[rank R] …`` as it arrives (``-f``:
until the job ends), so lines of different nodes interleave in the order they were read; ``--tail N``
prints the last N of the lines there are now, rank after rank, each rank's read back from its end
(``cli.log_tail``), and with ``-f`` every line after them.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, BinaryIO

from tuxai.cli.log_tail import tail_of

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


class RankReader:
    """Where each rank's log was read to, and its last line not finished yet."""

    def __init__(self, api: Client, job_id: int, nodes: int) -> None:
        """Every rank of job ``job_id`` (``nodes`` of them), read from the start."""
        self.api, self.job_id = api, job_id
        self.offsets, self.partial = [0] * nodes, [b""] * nodes

    def turn(self) -> tuple[list[bytes], bool, bool]:
        """One read of every rank: the new complete lines (prefixed), whether any rank had data, whether
        the job has ended."""
        lines: list[bytes] = []
        read_any = ended = False
        for rank in range(len(self.offsets)):
            data, self.offsets[rank], state = self.api.log(self.job_id, self.offsets[rank], rank=rank)
            ended = ended or state.terminal
            if data:
                read_any = True
                new, self.partial[rank] = prefixed(rank, data, self.partial[rank])
                lines += new
        return lines, read_any, ended

    def ends(self) -> list[bytes]:
        """The last lines without a newline, prefixed (taken: read once)."""
        ends = [b"[rank %d] %s\n" % (r, p) for r, p in enumerate(self.partial) if p]
        self.partial = [b""] * len(self.partial)
        return ends


def print_ranks(api: Client, job_id: int, nodes: int, follow: bool, tail: int | None, poll_s: float = 0.2) -> int:
    """Every rank's output, prefixed, in turns; ``tail``: only the last lines of what is there now (and,
    with ``follow``, every line after them); ``follow``: until the job ends."""
    out: BinaryIO = sys.stdout.buffer
    reader = RankReader(api, job_id, nodes)
    if tail is not None:
        kept: list[bytes] = []
        for rank in range(nodes):  # each rank's last lines, read back from its end (``cli.log_tail``)
            lines, reader.partial[rank], reader.offsets[rank] = tail_of(api, job_id, rank, tail)
            kept += [b"[rank %d] %s" % (rank, line) for line in lines]
        kept = [*kept, *([] if follow else reader.ends())]
        out.writelines(kept[len(kept) - tail :] if tail else [])
        out.flush()
        if not follow:
            return 0
    while True:
        lines, read_any, ended = reader.turn()
        out.writelines(lines)
        out.flush()
        if read_any:
            continue
        if not follow or ended:
            break
        time.sleep(poll_s)
    out.writelines(reader.ends())
    out.flush()
    return 0
