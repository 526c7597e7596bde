"""``tuxai submit``'s side of the run desk (``lifecycle.run_desk``): a run opened, tagged or deleted by the
user's watcher, which is started (and waited for) when none is alive.

What happens, in order: the desk's socket answers → the request is sent. A desk that closes the connection
unanswered (a watcher leaving, the request queued) is asked once more. No socket, or a stale one (a
watcher killed): the submit takes the folder's lock, starts a watcher and waits for its desk — the one
submit that pays MLflow's import, in the watcher — failing in one line if the watcher exits first or
does not answer in ``COLD_S``. The lock held but no desk for ``HELD_S`` (a watcher of a tuxai without
a desk, or one leaving; ``BIND_S`` for the one just started): ``Unserved``, and the submit opens the run
itself as before.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuxai.errors import TuxaiError
from tuxai.lifecycle.job_watch import lock_watcher, start_watcher
from tuxai.lifecycle.run_desk import (
    PROTOCOL,
    REQUEST_TAG,
    Unanswered,
    Unserved,
    address,
    mlflow_env,
    open_folder,
    peer_uid,
    read_line,
    send_line,
)

COLD_S = 120.0  # a watcher just started: MLflow's import and a new store's tables (7-20 s on 2 busy cores)
HELD_S = 2.0  # a watcher alive with no desk this long: the submit opens its run itself
BIND_S = 30.0  # a watcher just started makes its desk before it loads MLflow: a Python start at most
POLL_S = 0.02


def _connect(folder_fd: int) -> socket.socket | None:
    """A connection to the folder's desk, None when there is none (no socket, or a dead watcher's).

    Raises:
        TuxaiError: the socket answering is another user's.
    """
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(address(folder_fd))
    except (FileNotFoundError, ConnectionRefusedError):
        conn.close()
        return None
    if peer_uid(conn) != os.getuid():
        conn.close()
        raise TuxaiError("the run watcher's socket belongs to another user", hint="remove it: it is not tuxai's")
    return conn


def _exchange(conn: socket.socket, request: Mapping[str, Any], timeout_s: float) -> dict[str, Any] | None:
    """The desk's answer to ``request``; None when the desk closed the connection before answering any of it
    (a watcher leaving, the request still in its queue: it was never read)."""
    conn.settimeout(timeout_s)
    try:
        send_line(conn, request)
        return read_line(conn)
    except (ConnectionResetError, BrokenPipeError, Unanswered):
        return None


def ask(folder: Path, request: Mapping[str, Any], cold_s: float = COLD_S, held_s: float = HELD_S) -> dict[str, Any]:
    """``request`` answered by ``folder``'s desk, its watcher started if none is alive.

    Raises:
        Unserved: a watcher without a desk holds the folder.
        TuxaiError: the folder is not the user's alone, or the watcher started exited before it answered.
        OSError: the connection broke, or no answer in ``cold_s``.
        ValueError: the answer was not one JSON line.
    """
    folder_fd = open_folder(folder, create=True)  # made and opened through no link, no other user's part (U4)
    try:
        began, started, dropped = time.monotonic(), False, False
        while True:
            conn = _connect(folder_fd)
            if conn is not None:
                with conn:
                    reply = _exchange(conn, request, cold_s)
                if reply is not None:
                    return reply
                if dropped:
                    raise TuxaiError("the MLflow run watcher closed the connection without an answer")
                dropped = True  # asked once more: this desk, or the watcher that follows it
                request = {**request, "retry": True}  # an open it did before dying is answered, not done twice
                continue
            lock_fd = lock_watcher(folder)
            if lock_fd is not None:
                if started:
                    os.close(lock_fd)
                    raise TuxaiError(
                        "the MLflow run watcher exited before it answered", hint=f"see {folder.parent / 'watch.log'}"
                    )
                start_watcher(folder, lock_fd)
                began, started = time.monotonic(), True
                continue
            if time.monotonic() - began > (BIND_S if started else held_s):
                raise Unserved("a run watcher without a desk holds the folder")
            time.sleep(POLL_S)
    finally:
        os.close(folder_fd)


class DeskRuns:
    """Runs of one experiment in one store, opened by the watcher of ``folder`` (the ``Tracker`` calls)."""

    def __init__(
        self, folder: Path, experiment: str, uri: str, artifacts: str | None, env: Mapping[str, str] | None = None
    ) -> None:
        self.folder, self.uri = folder, uri
        self.base = {
            "version": PROTOCOL,
            "env": mlflow_env(env),
            "uri": uri,
            "artifacts": artifacts,
            "experiment": experiment,
        }

    def _ask(self, op: str, **fields: Any) -> dict[str, Any]:
        reply = ask(self.folder, {**self.base, "op": op, **fields})
        if reply.get("error") == "unserved":
            raise Unserved(str(reply.get("message")))
        if "error" in reply:
            raise TuxaiError(str(reply.get("message")), hint=f"see {self.folder.parent / 'watch.log'}")
        return reply

    def open(self, name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> str:
        """A new run named ``name``; its id."""
        tags = {**tags, REQUEST_TAG: uuid.uuid4().hex}  # its retry finds this run (run_desk's docstring)
        return str(self._ask("open", name=name, params=dict(params), tags=tags)["run"])

    def tag(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set ``tags`` on a run."""
        self._ask("tag", run=run_id, tags=dict(tags))

    def delete(self, run_id: str) -> None:
        """Delete a run (its job was never submitted)."""
        with contextlib.suppress(Unserved):
            self._ask("delete", run=run_id)
