"""Where a server listens: ``HOST:PORT`` parsed, loopback told apart from the network, the socket
bound with one clear error. The daemon's ``--tcp`` and ``--metrics-addr`` and the model server's
``--host``/``--port`` all go through here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

from tuxai.errors import UsageError


def parse_address(address: str, flag: str) -> tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``: ``"127.0.0.1:8765"`` → ``("127.0.0.1", 8765)``, ``"[::1]:0"`` → ``("::1", 0)``.

    Raises:
        UsageError: not ``HOST:PORT`` with a port 0-65535 (the message names ``flag``).
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{flag} must be HOST:PORT, got {address!r}", hint=f"e.g. {flag} 127.0.0.1:8765 (port 0: any)")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback one (127.0.0.0/8, ::1, localhost).

    ``""`` and ``0.0.0.0`` (every interface) are not; a name is resolved and all its addresses must be.
    """
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    if not host:
        return False
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in found)


def display(host: str, port: int) -> str:
    """``host:port`` as a URL writes it: ``[::1]:8000`` for IPv6."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_tcp(host: str, port: int, flag: str, backlog: int = 512) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (``SO_REUSEADDR``; IPv6 when ``host`` is).

    Raises:
        UsageError: the port is out of range, the address is in use or not this machine's
            (the message names the address and ``flag``).
    """
    if not 0 <= port <= 65535:
        raise UsageError(f"{flag}: port {port} is not 0-65535", hint="port 0 picks any free one")
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on connections of a socket that says it is
    # TCP. Without it every keep-alive answer written in two parts (head, body) waited for the peer's
    # delayed ACK: 40 ms an answer (the dashboard's floor was 44 ms, issue 18).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot listen on {display(host, port)}: {reason}", hint=f"pick another {flag}") from None
    sock.listen(backlog)
    return sock
