"""The dashboard's login: a token is good once and for a short while; a session carries who asked."""

from __future__ import annotations

from tuxai.daemon.config import Caller
from tuxai.ui.sessions import SESSION_TTL_S, TOKEN_TTL_S, Sessions, csrf_ok

ALICE = Caller("alice", 1000, 1000)


def test_a_token_is_exchanged_once_for_a_session_of_its_asker() -> None:
    sessions = Sessions()
    token = sessions.issue(ALICE, now=0.0)
    exchanged = sessions.exchange(token, now=1.0)
    assert exchanged is not None
    cookie, session = exchanged
    assert session.caller == ALICE and cookie != token
    assert sessions.session(cookie, now=2.0) == session
    assert sessions.exchange(token, now=2.0) is None  # used: gone


def test_an_expired_or_unknown_token_is_no_login_and_is_gone_after_the_try() -> None:
    sessions = Sessions()
    token = sessions.issue(ALICE, now=0.0)
    assert sessions.exchange(token, now=TOKEN_TTL_S + 1) is None
    assert sessions.exchange("not-a-token", now=0.0) is None
    fresh = sessions.issue(ALICE, now=0.0)
    assert sessions.exchange(fresh + "x", now=0.0) is None
    assert sessions.exchange(fresh, now=0.0) is not None  # a wrong guess does not burn another's token


def test_a_session_expires_and_logout_ends_it() -> None:
    sessions = Sessions()
    exchanged = sessions.exchange(sessions.issue(ALICE, now=0.0), now=0.0)
    assert exchanged is not None
    cookie, session = exchanged
    assert sessions.session(cookie, now=SESSION_TTL_S + 1) is None
    assert sessions.session("", now=0.0) is None
    sessions.logout(cookie)
    assert sessions.session(cookie, now=1.0) is None
    assert csrf_ok(session, session.csrf) and not csrf_ok(session, "") and not csrf_ok(session, "\udcff")
