"""Who is on the other end of the Unix socket: ``SO_PEERCRED`` into the ASGI scope.

uvicorn gives an app no socket, only ``scope["client"]``; on a Unix socket that is empty.
``PeerCredProtocol`` (uvicorn's httptools protocol) fills it at connection time with
``("peercred:UID:GID:PID:G1,G2", 0)``, which no TCP peer can produce (its host is an
address), and ``peer_from_scope`` reads it back. Proxy headers are off on our servers.

Its httptools protocol caps a request's head at 64 KiB (``edge.heads``, shared with the model
server): past the cap the answer is 431 and the connection closes.
"""

from __future__ import annotations

import asyncio
import errno
import os
import pwd
import socket
import struct
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from tuxai.edge.heads import HeadCappedHttpTools

PREFIX = "peercred:"


SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux ≥ 4.13; Python names it from 3.13 on
_GID = struct.Struct("=I")  # gid_t


def parse_groups(raw: bytes) -> tuple[int, ...]:
    """``SO_PEERGROUPS``' array of ``gid_t`` → the groups.

    >>> parse_groups(struct.pack("=2I", 27, 1000))
    (27, 1000)
    """
    return tuple(gid for (gid,) in _GID.iter_unpack(raw[: len(raw) - len(raw) % _GID.size]))


def peer_groups(sock: socket.socket, uid: int, gid: int) -> tuple[int, ...]:
    """The peer's supplementary groups when it connected (``SO_PEERGROUPS``); on a kernel without it,
    those the user database gives ``uid``. Never /proc/PID: the pid may be another process's by now."""
    for count in (64, 65536):  # NGROUPS_MAX is 65536; the kernel says ERANGE when the buffer is short
        try:
            return parse_groups(sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, _GID.size * count))
        except OSError as exc:
            if exc.errno != errno.ERANGE:
                break
    try:
        return tuple(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    except (KeyError, OSError):
        return ()


def peer_client(transport: asyncio.Transport) -> tuple[str, int] | None:
    """The ``client`` value for a Unix-socket peer (None for TCP)."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    groups = ",".join(str(g) for g in peer_groups(sock, uid, gid))
    return (f"{PREFIX}{uid}:{gid}:{pid}:{groups}", 0)


class PeerCredH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the peer's credentials as ``client`` on Unix sockets."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Record ``SO_PEERCRED`` of a Unix-socket peer before the first request."""
        super().connection_made(transport)
        self.client = peer_client(transport) or self.client


class PeerCredHttpToolsProtocol(HeadCappedHttpTools):
    """The same over uvicorn's httptools protocol (about twice as fast as h11), with the head
    capped (``edge.heads``) and refused in the API's error shape."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Record ``SO_PEERCRED`` of a Unix-socket peer before the first request."""
        super().connection_made(transport)
        self.client = peer_client(transport) or self.client

    def refusal(self, message: str) -> dict[str, str]:
        """The 431 as ``{error, message, hint}``."""
        return {"error": "UsageError", "message": message,
                "hint": "send fewer or shorter headers, and the job spec in the body"}  # fmt: skip


PeerCredProtocol = PeerCredHttpToolsProtocol


def peer_from_scope(scope: MutableMapping[str, Any]) -> tuple[int, int, tuple[int, ...]] | None:
    """``(uid, gid, groups)`` of a Unix-socket peer, or None (TCP, or no credentials)."""
    client = scope.get("client")
    if not client or not isinstance(client[0], str) or not client[0].startswith(PREFIX):
        return None
    uid, gid, _pid, groups = client[0][len(PREFIX) :].split(":", 3)
    return int(uid), int(gid), tuple(int(g) for g in groups.split(",") if g)
