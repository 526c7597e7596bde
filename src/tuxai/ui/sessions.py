"""Login tokens and browser sessions, in the daemon's memory (a restart logs everyone out).

A token is made for whoever asked over the Unix socket (their ``Caller``: the OS's word), is good
once and for ``TOKEN_TTL_S``; exchanged, it becomes a session: a random cookie value (stored as its
SHA-256 only) and a CSRF token that every POST form carries. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from tuxai.daemon.config import Caller

TOKEN_TTL_S = 90.0
SESSION_TTL_S = 12 * 3600.0
COOKIE = "tuxai_session"


@dataclass(frozen=True)
class Session:
    """A logged-in browser: who it is (the OS identity of the token's asker) and its CSRF token."""

    caller: Caller
    csrf: str
    expires_at: float


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


class Sessions:
    """The tokens not yet used and the live sessions; thread-safe, time comes in as ``now``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[Caller, float]] = {}
        self._sessions: dict[str, Session] = {}

    def issue(self, caller: Caller, now: float) -> str:
        """A new one-time login token for ``caller``, good for ``TOKEN_TTL_S``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired(now)
            self._tokens[_digest(token)] = (caller, now + TOKEN_TTL_S)
        return token

    def exchange(self, token: str, now: float) -> tuple[str, Session] | None:
        """The token's session (cookie value, session), once: a used, expired or unknown token is None."""
        with self._lock:
            found = self._tokens.pop(_digest(token), None)  # gone at the first try, good or not
            if found is None or found[1] < now:
                return None
            cookie = secrets.token_urlsafe(32)
            session = Session(found[0], secrets.token_urlsafe(24), now + SESSION_TTL_S)
            self._sessions[_digest(cookie)] = session
            return cookie, session

    def session(self, cookie: str, now: float) -> Session | None:
        """The live session of a cookie value, else None."""
        if not cookie:
            return None
        with self._lock:
            session = self._sessions.get(_digest(cookie))
        if session is None or session.expires_at < now:
            return None
        return session

    def logout(self, cookie: str) -> None:
        """End the session of a cookie value."""
        with self._lock:
            self._sessions.pop(_digest(cookie), None)

    def _forget_expired(self, now: float) -> None:
        self._tokens = {k: v for k, v in self._tokens.items() if v[1] >= now}
        self._sessions = {k: v for k, v in self._sessions.items() if v.expires_at >= now}


def csrf_ok(session: Session, sent: str) -> bool:
    """The form's CSRF token is the session's (constant-time)."""
    return hmac.compare_digest(session.csrf.encode(), sent.encode("utf-8", "surrogateescape"))
