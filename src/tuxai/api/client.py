"""``Client``: the Python SDK, the same verbs as the CLI (which uses it).

    from tuxai.api.client import Client
    client = Client.discover()               # $TUXAI_HOME's daemon; else yours, else the system's
    job_id = client.submit({"command": ["python", "train.py"], "gpus": 1})
    client.wait(job_id).state                # JobState.SUCCEEDED ("succeeded")

Answers are the frozen types of ``tuxai.model.wire`` (``Job``, ``GpuView``, ``Health`` …). Errors
come back as the ``TuxaiError`` the daemon raised (``UsageError``, ``JobNotFound``,
``PermissionDenied`` …) with its message, hint, fields and ``status``; no daemon is a
``DaemonError`` that says how to start one, an answer this client cannot read another.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpcore
import httpx

from tuxai.errors import DaemonError, TuxaiError
from tuxai.model.array import ArrayCounts
from tuxai.model.job import JobSpec, JobState
from tuxai.model.jobfile import spec_to_dict
from tuxai.model.wire import (
    VERSIONS_HINT,
    ErrorBody,
    Health,
    Job,
    LimitsView,
    PublicJob,
    Submitted,
    error_from_body,
    from_json,
    job_from_json,
)
from tuxai.model.wire_gpus import GpuView, LiveView
from tuxai.model.wire_ui import UiLogin

T = TypeVar("T")


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

    def _read(self, cls: type[T], method: str, path: str, **kwargs: Any) -> T:
        """The answer to a call, read as ``cls`` (``tuxai.model.wire``)."""
        return from_json(cls, _json(self._call(method, path, **kwargs)), path)

    def health(self) -> Health:
        """The daemon's pid, version, home and machine, and how its loops fare."""
        return self._read(Health, "GET", "/v1/health")

    def submit(self, spec: JobSpec | Mapping[str, object], environment: Mapping[str, str] | None = None) -> int:
        """Submit a job: a ``JobSpec`` (``tuxai.model.jobfile.spec_from_dict`` of a job file's fields), or
        the fields themselves (``command``, ``gpus``, ``cpus``, ``mem``, ``time`` …), which the daemon
        checks with that same function; its id.

        ``environment`` is the job's base environment (default: this process's).
        """
        fields = spec_to_dict(spec) if isinstance(spec, JobSpec) else dict(spec)
        env = dict(os.environ if environment is None else environment)
        # Encoded here, ASCII-only and NaN allowed, so that whatever the text (a variable holding
        # non-UTF-8 bytes, a float('nan')) the daemon names the bad field rather than httpx raising.
        body = json.dumps({"spec": fields, "environment": env}, ensure_ascii=True).encode()
        headers = {"content-type": "application/json"}
        return self._read(Submitted, "POST", "/v1/jobs", content=body, headers=headers).id

    def jobs(self, states: Sequence[str] | None = None) -> list[PublicJob]:
        """The jobs you may see, oldest first: yours (everyone's for root or the daemon's owner) as ``Job``,
        others' as ``PublicJob``; ``states``: only those (``JobState`` values)."""
        params = [("state", str(s)) for s in states or []]
        listed = _listed(self._call("GET", "/v1/jobs", params=params))
        return [job_from_json(item, f"/v1/jobs[{i}]") for i, item in enumerate(listed)]

    def job(self, job_id: int) -> PublicJob:
        """One job: yours as a ``JobDetail`` (with its history and energy), another user's as a ``PublicJob``."""
        return job_from_json(_json(self._call("GET", f"/v1/jobs/{job_id}")), f"job {job_id}")

    def cancel(self, job_id: int) -> Job:
        """Cancel a job (a running one gets SIGTERM, its grace period, then SIGKILL)."""
        return self._read(Job, "POST", f"/v1/jobs/{job_id}/cancel")

    def hold(self, job_id: int) -> Job:
        """Keep a pending job from starting."""
        return self._read(Job, "POST", f"/v1/jobs/{job_id}/hold")

    def release(self, job_id: int) -> Job:
        """Let a held job start."""
        return self._read(Job, "POST", f"/v1/jobs/{job_id}/release")

    def array(self, array_id: int) -> list[PublicJob]:
        """The tasks of array ``array_id`` in index order (``JobNotFound``: no such array)."""
        listed = _listed(self._call("GET", f"/v1/arrays/{array_id}"))
        return [job_from_json(item, f"array {array_id}[{i}]") for i, item in enumerate(listed)]

    def array_counts(self, array_id: int) -> ArrayCounts:
        """An array's indices and how many of its tasks are in each state (``JobNotFound``: no such array)."""
        return self._read(ArrayCounts, "GET", f"/v1/arrays/{array_id}/counts")

    def array_action(self, array_id: int, verb: str) -> list[Job]:
        """``cancel``, ``hold`` or ``release`` every task of an array; the tasks, after."""
        listed = _listed(self._call("POST", f"/v1/arrays/{array_id}/{verb}"))
        return [from_json(Job, item, f"array {array_id}[{i}]") for i, item in enumerate(listed)]

    def gpus(self) -> list[GpuView]:
        """Every GPU and the jobs holding it."""
        listed = _listed(self._call("GET", "/v1/gpus"))
        return [from_json(GpuView, item, f"/v1/gpus[{i}]") for i, item in enumerate(listed)]

    def limits(self) -> LimitsView:
        """The caller's quotas and their use (root: everyone's)."""
        return self._read(LimitsView, "GET", "/v1/limits")

    def telemetry(self) -> LiveView:
        """The latest sample of every GPU with its holders, and the running jobs' usage."""
        return self._read(LiveView, "GET", "/v1/telemetry")

    def metrics(self) -> str:
        """The Prometheus exposition text."""
        return self._call("GET", "/metrics").text

    def ui_login(self) -> UiLogin:
        """A one-time link to the web dashboard for the caller (over the Unix socket only)."""
        return self._read(UiLogin, "POST", "/v1/ui/login")

    def shutdown(self) -> None:
        """Stop the daemon (jobs go on)."""
        self._call("POST", "/v1/shutdown")

    def log(self, job_id: int, offset: int = 0, rank: int = 0, limit: int | None = None) -> tuple[bytes, int, JobState]:
        """Output from ``offset`` (a multi-node job's node ``rank``; ``limit``: at most that many bytes, else
        the daemon's 4 MiB): (bytes, next offset, job state)."""
        params = {"offset": offset, **({"rank": rank} if rank else {}), **({} if limit is None else {"limit": limit})}
        response = self._call("GET", f"/v1/jobs/{job_id}/log", params=params)
        following = response.headers.get("x-tuxai-next-offset", "")
        if not following.isdigit():
            raise DaemonError(f"the daemon's log answer has no next offset ({following!r})", hint=VERSIONS_HINT)
        state = from_json(JobState, response.headers.get("x-tuxai-state"), "X-Tuxai-State")
        return response.content, int(following), state

    def log_size(self, job_id: int, rank: int = 0) -> int:
        """The size of the job's output now (a multi-node job's node ``rank``): where its last lines end."""
        params = {"offset": 0, "limit": 0, **({"rank": rank} if rank else {})}
        size = self._call("GET", f"/v1/jobs/{job_id}/log", params=params).headers.get("x-tuxai-log-size", "")
        if not size.isdigit():
            raise DaemonError(f"the daemon's log answer has no size ({size!r})", hint=VERSIONS_HINT)
        return int(size)

    def follow(self, job_id: int, poll_s: float = 0.2) -> Iterator[bytes]:
        """The job's output as it is written, until the job ends."""
        offset = 0
        while True:
            data, offset, state = self.log(job_id, offset)
            if data:
                yield data
            elif state.terminal:
                return
            else:
                time.sleep(poll_s)

    def wait(self, job_id: int, timeout_s: float = 3600.0, poll_s: float = 0.05) -> PublicJob:
        """Poll until the job ended; the job (``job``). Raises ``DaemonError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job.state.terminal:
                return job
            if time.monotonic() > deadline:
                raise DaemonError(f"job {job_id} still {job.state} after {timeout_s:g} s", hint="wait longer")
            time.sleep(poll_s)


def _json(response: httpx.Response) -> object:
    """The answer's JSON. Raises ``DaemonError``: not JSON."""
    try:
        data: object = response.json()
    except ValueError:
        raise DaemonError(f"the daemon answered {response.text[:80]!r}, not JSON", hint=VERSIONS_HINT) from None
    return data


def _listed(response: httpx.Response) -> list[object]:
    """The answer's JSON list. Raises ``DaemonError``: not one."""
    data = _json(response)
    if not isinstance(data, list):
        raise DaemonError(f"the daemon answered {str(data)[:80]!r}, not a list", hint=VERSIONS_HINT)
    return data


def _error(response: httpx.Response) -> TuxaiError:
    """The ``TuxaiError`` of an error answer: the class it names with its message, hint and fields
    (``tuxai.model.wire.error_from_body``); an answer in no shape of ours (a proxy's page) by its status."""
    try:
        body = from_json(ErrorBody, response.json(), "error")
    except (ValueError, DaemonError):
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        body = ErrorBody("", f"the daemon refused the request ({response.status_code}): {text}", "")
    return error_from_body(body, response.status_code)
