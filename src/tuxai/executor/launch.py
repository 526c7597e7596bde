"""The master port of a gang, checked free on the master's address by binding it (the launch
contract's one piece of I/O; the variables and words are ``model.launch``'s)."""

from __future__ import annotations

import errno
import socket

from tuxai.errors import UsageError
from tuxai.model.launch import PORT_HIGH, PORT_LOW


def port_is_free(address: str, port: int) -> bool:
    """True when a listening socket can be bound to ``address:port`` now (the master's bind test)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(address: str, preferred: int, tries: int = 64) -> int:
    """``preferred``, or the next port after it in 20000-29999 that binds on ``address``.

    Raises:
        UsageError: none of ``tries`` ports is free, or ``address`` is not this machine's.
    """
    span = PORT_HIGH - PORT_LOW + 1
    for step in range(tries):
        port = PORT_LOW + (preferred - PORT_LOW + step) % span
        try:
            if port_is_free(address, port):
                return port
        except OSError as exc:
            raise UsageError(f"cannot test a master port on {address}: {exc.strerror or exc}") from None
    raise UsageError(f"no free master port on {address} in {tries} tries from {preferred}")
