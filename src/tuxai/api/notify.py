"""The notify socket: a shim's datagram ``JOB_ID`` says its job ended; the loop looks at it at once.

A datagram costs little whoever sends it, and only a shim's counts:

- the socket is 0600 and only the daemon's own user and root are heard (shims run as the
  daemon), by the kernel's ``SCM_CREDENTIALS``, not by what the datagram says;
- a burst is read in one go (up to ``BATCH`` datagrams) and wakes the loop once; the loop's
  event coalesces bursts further (a flood costs at most one tick per pass of the loop), and the
  same id again within ``REPEAT_S`` is ignored;
- an id that is not a running job is dropped, so the set the loop reads stays as small as
  the running jobs, whatever ids arrive.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import struct
import threading
import time
from pathlib import Path

from tuxai.api.home import unix_socket
from tuxai.daemon.core import Daemon
from tuxai.model.job import JobState

log = logging.getLogger("tuxai.daemon")
BATCH = 4096
REPEAT_S = 0.5
_UCRED = struct.Struct("3i")  # pid, uid, gid
_ANCILLARY = socket.CMSG_SPACE(_UCRED.size)


def sender_uid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The sender's uid from a datagram's ``SCM_CREDENTIALS`` (None when the kernel gave none)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= _UCRED.size:
            return int(_UCRED.unpack(data[: _UCRED.size])[1])
    return None


def read_batch(sock: socket.socket, trusted: frozenset[int], wait_s: float = 0.5) -> set[int]:
    """Job ids from the datagrams waiting on the non-blocking ``sock`` (after up to ``wait_s`` for the
    first), sent by ``trusted`` uids; empty when nothing came.

    Raises:
        OSError: the socket was closed.
    """
    ids: set[int] = set()
    if not select.select([sock], [], [], wait_s)[0]:
        return ids
    for _ in range(BATCH):
        try:
            data, ancillary, _, _ = sock.recvmsg(32, _ANCILLARY)
        except BlockingIOError:
            break
        text = data.strip()
        if sender_uid(ancillary) in trusted and text.isdigit() and len(text) < 19:
            ids.add(int(text))
    return ids


def not_told(ids: set[int], told: dict[int, float], now: float, window_s: float = REPEAT_S) -> set[int]:
    """``ids`` less those told within ``window_s`` (a shim sends one datagram per attempt: a repeat
    that soon says nothing new, and an end it did announce is seen by the next full tick anyway);
    ``told`` forgets what is older.

    >>> not_told({1, 2}, {1: 10.0, 3: 9.0}, now=10.2)
    {2}
    """
    for job_id in [j for j, at in told.items() if now - at >= window_s]:
        del told[job_id]
    return {i for i in ids if i not in told}


def notify_listener(path: Path, daemon: Daemon, stop: threading.Event) -> socket.socket:
    """Bind ``path`` and hear shims on a thread of its own until ``stop``."""
    sock = unix_socket(path, socket.SOCK_DGRAM, 0o600)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.setblocking(False)
    trusted = frozenset({0, os.geteuid()})  # the daemon's user: its shims run as it
    told: dict[int, float] = {}  # running jobs said to have ended, and when

    def listen() -> None:
        while not stop.is_set():
            try:
                ids = read_batch(sock, trusted)  # waits at most 0.5 s: ``stop`` is seen
            except (OSError, ValueError):  # closed at shutdown
                return
            ids = not_told(ids, told, time.monotonic())
            if not ids:
                continue
            try:
                running = {job.id for job in daemon.store.jobs([JobState.RUNNING])}
            except Exception as exc:  # the store's trouble is the loop's to report (logged with its traceback)
                log.warning("notify: cannot read the running jobs (%s); the next full tick looks", exc, exc_info=exc)
                continue
            for job_id in ids & running:
                told[job_id] = time.monotonic()
                daemon.ended(job_id)

    threading.Thread(target=listen, name="notify", daemon=True).start()
    return sock
