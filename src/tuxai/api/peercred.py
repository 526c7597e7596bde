"""Who is on the other end of the Unix socket: ``SO_PEERCRED`` into the ASGI scope.

uvicorn gives an app no socket, only ``scope["client"]``; on a Unix socket that is empty.
``PeerCredProtocol`` (uvicorn's h11 protocol) fills it at connection time with
``("peercred:UID:GID:PID:G1,G2", 0)``, which no TCP peer can produce (its host is an
address), and ``peer_from_scope`` reads it back. Proxy headers are off on our servers.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PREFIX = "peercred:"


def _groups(pid: int) -> tuple[int, ...]:
    """Supplementary groups of ``pid`` from ``/proc/PID/status`` (empty if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("Groups:"):
                    return tuple(int(g) for g in line.split()[1:])
    except OSError:
        pass
    return ()


def peer_client(transport: asyncio.Transport) -> tuple[str, int] | None:
    """The ``client`` value for a Unix-socket peer (None for TCP)."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    groups = ",".join(str(g) for g in _groups(pid))
    return (f"{PREFIX}{uid}:{gid}:{pid}:{groups}", 0)


class PeerCredH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the peer's credentials as ``client`` on Unix sockets."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Record ``SO_PEERCRED`` of a Unix-socket peer before the first request."""
        super().connection_made(transport)
        self.client = peer_client(transport) or self.client


class PeerCredHttpToolsProtocol(HttpToolsProtocol):
    """The same over uvicorn's httptools protocol (about twice as fast as h11)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Record ``SO_PEERCRED`` of a Unix-socket peer before the first request."""
        super().connection_made(transport)
        self.client = peer_client(transport) or self.client


PeerCredProtocol = PeerCredHttpToolsProtocol


def peer_from_scope(scope: MutableMapping[str, Any]) -> tuple[int, int, tuple[int, ...]] | None:
    """``(uid, gid, groups)`` of a Unix-socket peer, or None (TCP, or no credentials)."""
    client = scope.get("client")
    if not client or not isinstance(client[0], str) or not client[0].startswith(PREFIX):
        return None
    uid, gid, _pid, groups = client[0][len(PREFIX) :].split(":", 3)
    return int(uid), int(gid), tuple(int(g) for g in groups.split(",") if g)
