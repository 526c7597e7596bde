"""The bearer-token check of both servers: ``Authorization: Bearer <token>`` compared as bytes in
constant time (``hmac.compare_digest``), whatever bytes a client sends in the header (no 500)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable


def bearer_ok(headers: Iterable[tuple[bytes, bytes]], token: str | bytes) -> bool:
    """Whether the first ``Authorization`` header of ``headers`` (ASGI's raw pairs) is ``Bearer <token>``.

    The scheme is case-insensitive, spaces around the token are ignored; an empty ``token``
    matches nothing.

    >>> bearer_ok([(b"authorization", b"Bearer s3cret")], "s3cret")
    True
    """
    expected = token.encode() if isinstance(token, str) else token
    if not expected:
        return False
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), expected)
    return False
