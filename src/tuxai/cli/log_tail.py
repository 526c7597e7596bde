"""``tuxai logs --tail N``: a log's last lines read back from its end (``cli.logs``, ``cli.rank_logs``).

The log's size is asked first (the daemon's ``X-Tuxai-Log-Size``); blocks are read backwards from there,
each twice the last (64 KiB, up to the daemon's 4 MiB answer), until they hold N lines. A log of gigabytes
costs what its last lines do, and a job that writes faster than the reader reads cannot keep the tail from
ending: what it wrote after the size was asked is what ``-f`` prints next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuxai.api.client import Client

FIRST_BLOCK = 64 * 2**10
MAX_BLOCK = 4 * 2**20  # the daemon's largest answer


def read_span(api: Client, job_id: int, rank: int, start: int, stop: int) -> bytes:
    """Bytes ``start`` to ``stop`` of node ``rank``'s log (fewer where it is shorter)."""
    parts = []
    while start < stop:
        data, _, _ = api.log(job_id, start, rank=rank, limit=min(stop - start, MAX_BLOCK))
        if not data:
            break
        parts.append(data)
        start += len(data)
    return b"".join(parts)


def tail_of(api: Client, job_id: int, rank: int, count: int) -> tuple[list[bytes], bytes, int]:
    """The last ``count`` complete lines (each with its newline) of node ``rank``'s log as it is now, its
    unfinished last line, and its size now (where to follow from)."""
    size = api.log_size(job_id, rank)
    text, start, block = b"", size, FIRST_BLOCK
    while start > 0 and text.count(b"\n") <= count:  # one more newline than lines: the first may be cut
        begin = max(0, start - block)
        text = read_span(api, job_id, rank, begin, start) + text
        start, block = begin, min(2 * block, MAX_BLOCK)
    *lines, partial = text.split(b"\n")
    complete = [line + b"\n" for line in lines[1 if start else 0 :]]
    return complete[len(complete) - count :] if count else [], partial, size
