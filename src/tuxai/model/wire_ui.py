"""The wire type of the dashboard's login (``POST /v1/ui/login``, ``tuxai ui``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UiLogin:
    """A one-time login: the loopback URL that carries the token, and how long it stays good."""

    url: str
    expires_s: float
