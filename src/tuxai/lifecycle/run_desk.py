"""The watcher's run desk: ``tuxai submit`` asks the user's running watcher for an MLflow run instead of
importing MLflow itself (~4 s) — the run is opened in milliseconds by a process that has it loaded.

One Unix socket, ``<tracking dir>/open/runs.sock``, in the user's own folder: the folder is opened without
following a link, through a path no other user can change (``open_path``, U4), and must belong to the
user with no access for group or others (0700), and the socket
is reached through that descriptor (``/proc/self/fd/N/runs.sock``), so no path a user controls leads
elsewhere and a long ``XDG_DATA_HOME`` fits a socket's 108 bytes. Both ends check the other's uid with
``SO_PEERCRED``: the desk answers only its own user, the submit talks only to a desk of its own user.

A request and its answer are one JSON line each::

    {"version": 1, "op": "open", "env": {MLFLOW_*}, "uri": ..., "artifacts": ..., "experiment": ...,
     "name": ..., "params": {...}, "tags": {..., "tuxai.request": "<hex>"}, "retry": bool}  → {"run": "<id>"}
    {"version": 1, "op": "tag" | "delete", ..., "run": "<id>", "tags": {...}}  → {"done": true}
    anything the store refuses                                → {"error": "store", "message": ...}
    another protocol version, or other MLFLOW_* variables     → {"error": "unserved", "message": ...}

An unserved request is the submit's to open itself, as before this desk existed (the slow path, still
tracked): a watcher of another tuxai version, or one started with other MLflow credentials, answers only
what it can answer right. Unserved requests do not keep a watcher alive, so it leaves when idle and the
next submit starts one of its own; nor do requests the store refused, and the store's client that failed
is made anew for the next request (a stale experiment id fails one submit, not every one that follows).

An ``open`` is asked again when the desk closed the connection unanswered (``desk_client.ask``): the
watcher may have opened the run and died before it answered. The submit tags each run it asks for with a
request id of its own (``tuxai.request``) and marks the second asking ``retry``: the desk then answers the
run that carries that id, if one exists, instead of opening a second (no orphaned RUNNING run).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from tuxai.errors import TuxaiError

PROTOCOL = 1  # bumped when a request or an answer changes shape
REQUEST_TAG = "tuxai.request"  # an ``open``'s id, chosen by the submit: its retry finds the run it opened
SOCKET = "runs.sock"
LINE_MAX = 1 << 20  # a request's bytes at most (a spec's parameters are cut at 6,000 characters each)
PEER_S = 5.0  # how long the desk waits for a connected client's request
OWN_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")  # sent as fields, not compared

Handler = Callable[[Mapping[str, Any]], dict[str, Any]]


class Unanswered(ValueError):
    """The other end closed the connection before sending a byte."""


class Unserved(Exception):
    """The desk cannot answer this request right (another version, other MLflow variables, no desk): the
    caller opens the run itself."""


def mlflow_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``MLFLOW_*`` variables that change how MLflow's client talks to a store (credentials, TLS,
    timeouts), without those a request names itself.

    >>> mlflow_env({"MLFLOW_TRACKING_TOKEN": "t", "MLFLOW_TRACKING_URI": "http://x", "HOME": "/root"})
    {'MLFLOW_TRACKING_TOKEN': 't'}
    """
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if k.startswith("MLFLOW_") and k not in OWN_ENV}


def open_path(path: Path, create: bool = False) -> int:
    """A descriptor (``O_PATH``) of the directory ``path``, walked from ``/`` one component at a time without
    following a link (with ``create``, those missing made: 0755, the last 0700), each component the caller's
    or root's and writable by no one else (a sticky one such as /tmp only above the last). No other user
    can then put a link anywhere on it: root's tracked submit with a ``HOME`` in a user's folder (``sudo
    -E``) never writes where that user points it (U4).

    Raises:
        TuxaiError: a component is a link, missing, another user's, or writable by others (one line).
    """
    path, here = Path(os.path.abspath(path)), Path("/")
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, part in enumerate(("", *path.parts[1:])):
            if part:
                here, at, fd = here / part, fd, -1
                try:
                    fd = _open_at(part, at, 0o700 if depth == len(path.parts) - 1 else 0o755, create)
                finally:
                    os.close(at)
            _check_part(os.fstat(fd), path, here, last=depth == len(path.parts) - 1)
    except (OSError, TuxaiError) as error:
        if fd >= 0:
            os.close(fd)
        if isinstance(error, TuxaiError):
            raise
        raise TuxaiError(f"{path}: cannot open {here}: {error.strerror} (a link is never followed)") from None
    return fd


def _open_at(name: str, at: int, mode: int, create: bool) -> int:
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=at)
    return os.open(name, flags, dir_fd=at)


def _check_part(info: os.stat_result, path: Path, here: Path, last: bool) -> None:
    if info.st_uid not in (0, os.getuid()):
        raise TuxaiError(
            f"{path}: {here} belongs to another user (uid {info.st_uid}): tuxai writes nothing under it",
            hint="set XDG_DATA_HOME (or HOME) to a folder of your own",
        )
    if info.st_mode & 0o022 and (last or not info.st_mode & stat.S_ISVTX):
        raise TuxaiError(
            f"{path}: {here} is writable by other users (mode {stat.S_IMODE(info.st_mode):o})",
            hint=f"chmod go-w {here}",
        )


def open_folder(folder: Path, create: bool = False) -> int:
    """A descriptor (``O_PATH``) of ``folder`` (``open_path``: no link on its way, no other user's part;
    ``create``: made where missing), once it is shown to be the caller's own with no access for anyone else.

    Raises:
        TuxaiError: the folder is a link, another user's, or open to group or others, or its path is.
    """
    try:
        fd = open_path(folder, create)
    except TuxaiError as error:
        raise TuxaiError(f"cannot open the run watcher's folder: {error.message}", hint=error.hint) from None
    info = os.fstat(fd)
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        os.close(fd)
        raise TuxaiError(
            f"{folder}: the run watcher's folder is not yours alone (owner {info.st_uid}, "
            f"mode {stat.S_IMODE(info.st_mode):o})",
            hint=f"chmod 700 {folder}",
        )
    return fd


def address(folder_fd: int) -> str:
    """The desk's socket reached through the folder's descriptor."""
    return f"/proc/self/fd/{folder_fd}/{SOCKET}"


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (``SO_PEERCRED``)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def send_line(conn: socket.socket, message: Mapping[str, Any]) -> None:
    """``message`` as one JSON line."""
    conn.sendall(json.dumps(message).encode() + b"\n")


def read_line(conn: socket.socket) -> dict[str, Any]:
    """One JSON object read up to its newline.

    Raises:
        Unanswered: the peer closed before sending anything.
        ValueError: no whole line before the peer closed, a line over ``LINE_MAX``, or not a JSON object.
    """
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise (ValueError if data else Unanswered)("the connection closed before a whole line came")
        data += chunk
        if len(data) > LINE_MAX:
            raise ValueError(f"a line over {LINE_MAX} bytes")
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message


def answer(request: Mapping[str, Any], handle: Handler, own_env: Mapping[str, str]) -> dict[str, Any]:
    """The desk's answer to one request: version and variables checked, then ``handle``'s.

    >>> answer({"version": 0}, lambda r: {}, {})["error"]
    'unserved'
    """
    if request.get("version") != PROTOCOL:
        return {"error": "unserved", "message": f"protocol {request.get('version')!r}, this watcher's is {PROTOCOL}"}
    if request.get("env") != dict(own_env):
        return {"error": "unserved", "message": "the watcher was started with other MLFLOW_* variables"}
    return handle(request)


class RunDesk:
    """The watcher's side: a socket in its folder answering requests one at a time on a thread of its own;
    ``served`` is when it last answered one (monotonic), for the watcher's idle timeout."""

    def __init__(self, folder: Path, handle: Handler, own_env: Mapping[str, str] | None = None) -> None:
        self.handle, self.own_env = handle, mlflow_env(own_env)
        self.served = time.monotonic()
        self.folder_fd = open_folder(folder)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):  # a dead watcher's: we hold the folder's lock
            os.unlink(SOCKET, dir_fd=self.folder_fd)
        self.listener.bind(address(self.folder_fd))
        os.chmod(SOCKET, 0o600, dir_fd=self.folder_fd, follow_symlinks=False)
        self.inode = os.stat(SOCKET, dir_fd=self.folder_fd, follow_symlinks=False).st_ino
        self.listener.listen(16)
        self.thread = threading.Thread(target=self._serve, name="run-desk", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            with conn:
                self._one(conn)

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(PEER_S)
        try:
            if peer_uid(conn) != os.getuid():
                send_line(conn, {"error": "refused", "message": "this run watcher answers its own user only"})
                return
            reply = answer(read_line(conn), self.handle, self.own_env)
            if "error" not in reply:  # refused or failed requests keep no watcher alive
                self.served = time.monotonic()  # before the answer: the submit sees it set
            send_line(conn, reply)
        except (OSError, ValueError) as error:
            with contextlib.suppress(OSError):
                send_line(conn, {"error": "request", "message": str(error)})

    def close(self) -> None:
        """Stop answering: the socket file removed (if it is still ours), the listener closed."""
        with contextlib.suppress(OSError):
            if os.stat(SOCKET, dir_fd=self.folder_fd, follow_symlinks=False).st_ino == self.inode:
                os.unlink(SOCKET, dir_fd=self.folder_fd)
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=PEER_S + 1)
        os.close(self.folder_fd)


class MlflowHandler:
    """Requests done with MLflow's client, one ``Tracker`` per store and experiment, under ``lock`` (the
    watcher ends runs on its main thread); a tracker whose request failed is dropped, made anew next time.
    ``make`` builds a tracker from (uri, experiment, artifacts): MLflow's ``Tracker`` unless given."""

    def __init__(self, lock: threading.Lock, make: Callable[[str, str, str | None], Runs] | None = None) -> None:
        self.lock, self.make = lock, make or _mlflow_tracker
        self.trackers: dict[tuple[str, str, str | None], Runs] = {}

    def __call__(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``open``, ``tag`` or ``delete`` done; a failure of the store as ``{"error": "store"}``."""
        where: tuple[str, str, str | None] | None = None
        try:
            with self.lock:
                where = (str(request["uri"]), str(request["experiment"]), request.get("artifacts"))
                if where not in self.trackers:
                    self.trackers[where] = self.make(*where)
                return _do(self.trackers[where], request)
        except Exception as error:  # noqa: BLE001 (MLflow's own too: the submit says it in one line)
            if where is not None:
                with self.lock:
                    self.trackers.pop(where, None)
            return {"error": "store", "message": str(error) or type(error).__name__}


class Runs(Protocol):
    """What the desk asks of a store's client (``mlflow_runs.Tracker``)."""

    def open(self, name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> str:
        """A new run; its id."""

    def tag(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags on a run."""

    def delete(self, run_id: str) -> None:
        """Delete a run."""

    def find(self, key: str, value: str) -> str | None:
        """The run tagged ``key`` = ``value``, if any."""


def _mlflow_tracker(uri: str, experiment: str, artifacts: str | None) -> Runs:
    from tuxai.lifecycle.mlflow_runs import Tracker

    return Tracker(experiment, uri=uri, artifacts=artifacts)


def _do(tracker: Runs, request: Mapping[str, Any]) -> dict[str, Any]:
    if request["op"] == "open":
        tags = request["tags"]
        asked = tags.get(REQUEST_TAG) if request.get("retry") else None
        found = tracker.find(REQUEST_TAG, asked) if isinstance(asked, str) else None
        return {"run": found or tracker.open(str(request["name"]), request["params"], tags)}
    if request["op"] == "tag":
        tracker.tag(str(request["run"]), request["tags"])
    elif request["op"] == "delete":
        tracker.delete(str(request["run"]))
    else:
        return {"error": "request", "message": f"no operation {request['op']!r}"}
    return {"done": True}
