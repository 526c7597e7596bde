"""``Client``: the Python SDK, the same verbs as the CLI (which uses it).

    from tuxai.api.client import Client
    client = Client.discover()               # $TUXAI_HOME's daemon; else yours, else the system's
    job_id = client.submit({"command": ["python", "train.py"], "gpus": 1})
    client.wait(job_id)["state"]             # 'succeeded'

Errors come back as the ``TuxaiError`` the daemon raised (``UsageError``, ``JobNotFound``,
``PermissionDenied`` …); no daemon is a ``DaemonError`` that says how to start one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpcore
import httpx

from tuxai import errors
from tuxai.errors import DaemonError, TuxaiError

_ERRORS: dict[str, type[TuxaiError]] = {
    name: kind
    for name, kind in vars(errors).items()
    if isinstance(kind, type) and issubclass(kind, TuxaiError) and kind is not errors.ToolOutputError
}
_DONE = {"succeeded", "failed", "cancelled", "timeout", "preempted"}


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """``$TUXAI_HOME``, else the user's own home (``tuxai.settings.resolve_home``)."""
    from tuxai.settings import resolve_home

    return resolve_home(None, env)


def _answers(socket_path: Path) -> bool:
    """Whether something accepts connections on the Unix socket ``socket_path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True


class _ClosingUnixBackend(httpcore.SyncBackend):
    """httpcore's backend, except that a refused Unix-socket connect closes its socket.

    (httpcore leaves it to the garbage collector: a ResourceWarning each time the daemon is
    down.) A probe connect, closed either way, comes first; pooled connections make it rare.
    """

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(timeout)
            try:
                probe.connect(path)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(str(exc)) from exc
            except OSError as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        return super().connect_unix_socket(path, timeout, socket_options)


class _UnixTransport(httpx.HTTPTransport):
    """httpx over a Unix socket, with the closing backend."""

    def __init__(self, path: str) -> None:
        super().__init__(uds=path)
        self._pool = httpcore.ConnectionPool(uds=path, network_backend=_ClosingUnixBackend())


class Client:
    """One connection to a daemon: its Unix socket, or a URL with a bearer token."""

    def __init__(self, socket_path: Path | None = None, url: str = "", token: str = "", timeout_s: float = 30.0):
        if socket_path is None and not url:
            raise ValueError("give the daemon's socket_path or url")
        self.where = str(socket_path) if socket_path is not None else url
        self.home = socket_path.parent if socket_path is not None else None
        self.tried: tuple[str, ...] = (self.where,)  # where a daemon was looked for (``discover``)
        self._socket_path = socket_path
        transport = _UnixTransport(str(socket_path)) if socket_path is not None else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            transport=transport, base_url=url or "http://tuxai", headers=headers, timeout=timeout_s
        )

    @classmethod
    def for_home(cls, home: Path | None = None, timeout_s: float = 30.0) -> Client:
        """The daemon of ``home`` (default: ``default_home()``) over its Unix socket."""
        return cls((home or default_home()) / "tuxai.sock", timeout_s=timeout_s)

    @classmethod
    def discover(
        cls, home: Path | None = None, timeout_s: float = 30.0, env: Mapping[str, str] | None = None
    ) -> Client:
        """The daemon the user means: that of ``home`` or ``$TUXAI_HOME`` if given; else their own if it
        runs, else the system daemon's (``/var/lib/tuxai``; ``$TUXAI_SYSTEM_HOME``). With none running,
        the first call's ``DaemonError`` lists every place tried."""
        from tuxai.settings import candidate_homes

        homes = candidate_homes(home, env)
        found = next((h for h in homes if _answers(h / "tuxai.sock")), homes[0])
        client = cls.for_home(found, timeout_s=timeout_s)
        client.tried = tuple(str(h / "tuxai.sock") for h in homes)
        return client

    def describe(self) -> str:
        """Which daemon this client talks to, and why that one: for ``--debug`` and ``tuxai status``."""
        if len(self.tried) > 1 and self.where != self.tried[0]:
            return f"the system daemon at {self.where} (none answers at {self.tried[0]})"
        return f"the daemon at {self.where}"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        not_running = DaemonError(
            f"the tuxai daemon is not running (nothing answers at {' or '.join(self.tried)})",
            hint="start it with `tuxai up` (or `tuxai up --detach`), with the same --home",
        )
        if self._socket_path is not None and not os.path.exists(self._socket_path):
            raise not_running
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError):
            raise not_running from None
        except httpx.TimeoutException:
            raise DaemonError(f"the tuxai daemon at {self.where} did not answer in time", hint="see its log") from None
        except httpx.HTTPError as exc:
            raise DaemonError(f"cannot talk to the tuxai daemon at {self.where}: {exc}", hint="see its log") from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def health(self) -> dict[str, Any]:
        """The daemon's pid, version, home and machine."""
        data: dict[str, Any] = self._call("GET", "/v1/health").json()
        return data

    def submit(self, spec: Mapping[str, Any], environment: Mapping[str, str] | None = None) -> int:
        """Submit a job (job file fields: ``command``, ``gpus``, ``cpus``, ``mem``, ``time`` …); its id.

        ``environment`` is the job's base environment (default: this process's).
        """
        env = dict(os.environ if environment is None else environment)
        # Encoded here, ASCII-only and NaN allowed, so that whatever the text (a variable holding
        # non-UTF-8 bytes, a float('nan')) the daemon names the bad field rather than httpx raising.
        body = json.dumps({"spec": dict(spec), "environment": env}, ensure_ascii=True).encode()
        headers = {"content-type": "application/json"}
        return int(self._call("POST", "/v1/jobs", content=body, headers=headers).json()["id"])

    def jobs(self, states: list[str] | None = None) -> list[dict[str, Any]]:
        """The jobs you may see (everyone's for root or the daemon's owner)."""
        params = [("state", s) for s in states or []]
        data: list[dict[str, Any]] = self._call("GET", "/v1/jobs", params=params).json()
        return data

    def job(self, job_id: int) -> dict[str, Any]:
        """One job with its history (``events``)."""
        data: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}").json()
        return data

    def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a job (a running one gets SIGTERM, its grace period, then SIGKILL)."""
        data: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/cancel").json()
        return data

    def hold(self, job_id: int) -> dict[str, Any]:
        """Keep a pending job from starting."""
        data: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/hold").json()
        return data

    def release(self, job_id: int) -> dict[str, Any]:
        """Let a held job start."""
        data: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/release").json()
        return data

    def gpus(self) -> list[dict[str, Any]]:
        """Every GPU and the jobs holding it."""
        data: list[dict[str, Any]] = self._call("GET", "/v1/gpus").json()
        return data

    def telemetry(self) -> dict[str, Any]:
        """The latest sample of every GPU with its holders, and the running jobs' usage."""
        data: dict[str, Any] = self._call("GET", "/v1/telemetry").json()
        return data

    def metrics(self) -> str:
        """The Prometheus exposition text."""
        return self._call("GET", "/metrics").text

    def shutdown(self) -> None:
        """Stop the daemon (jobs go on)."""
        self._call("POST", "/v1/shutdown")

    def log(self, job_id: int, offset: int = 0) -> tuple[bytes, int, str]:
        """Output from ``offset``: (bytes, next offset, job state)."""
        response = self._call("GET", f"/v1/jobs/{job_id}/log", params={"offset": offset})
        return response.content, int(response.headers["x-tuxai-next-offset"]), response.headers["x-tuxai-state"]

    def follow(self, job_id: int, poll_s: float = 0.2) -> Iterator[bytes]:
        """The job's output as it is written, until the job ends."""
        offset = 0
        while True:
            data, offset, state = self.log(job_id, offset)
            if data:
                yield data
            elif state in _DONE:
                return
            else:
                time.sleep(poll_s)

    def wait(self, job_id: int, timeout_s: float = 3600.0, poll_s: float = 0.05) -> dict[str, Any]:
        """Poll until the job ended; the job. Raises ``DaemonError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job["state"] in _DONE:
                return job
            if time.monotonic() > deadline:
                raise DaemonError(f"job {job_id} still {job['state']} after {timeout_s:g} s", hint="wait longer")
            time.sleep(poll_s)


def _error(response: httpx.Response) -> TuxaiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "message" not in body:
        detail = body.get("detail") if isinstance(body, dict) else response.text[:200]
        return errors.UsageError(f"the daemon refused the request ({response.status_code}): {detail}")
    kind = _ERRORS.get(str(body.get("error")), TuxaiError)
    error = TuxaiError.__new__(kind)
    TuxaiError.__init__(error, str(body["message"]), str(body.get("hint", "")))
    return error
