"""The inference server as a raw ASGI app (no framework on the hot path): KServe v2 REST,
Triton's binary tensor extension, the repository extension, Prometheus metrics, a token.

The bearer token (``edge.bearer``, as the daemon's API checks it) guards every route but
liveness; with ``open_reads`` (loopback, no token given) only the repository extension (load,
unload, index) needs it. Request bodies stop at ``max_body_bytes``: 413 before a byte is read
when Content-Length says more, or as soon as a streamed body passes it.

Errors are the tree's (``tuxai.errors``), answered in KServe's ``{"error": "..."}``:
``InferenceInputError`` and other ``UsageError`` 400, ``RequestTooLarge`` 413 (the connection
closes), ``ModelNotFound`` 404, ``ModelNotReady`` and ``ModelOverloaded`` 503 with
``Retry-After: 1``; a model that fails on valid input 500 (the worker lives).

    GET  /v2/health/live | /v2/health/ready | /v2
    GET  /v2/models                                  every model: name, state, versions (state, reason)
    GET  /v2/models/{name}[/versions/{v}]            metadata
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer
    POST /v2/repository/index | /v2/repository/models/{name}/load | /unload
    GET  /metrics
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tuxai import __version__
from tuxai.edge.bearer import bearer_ok
from tuxai.errors import (
    InferenceInputError,
    ModelNotFound,
    ModelNotReady,
    ModelOverloaded,
    RequestTooLarge,
    ServingError,
    TuxaiError,
    UsageError,
)
from tuxai.model.units import format_bytes
from tuxai.serving.drift_board import DriftBoard
from tuxai.serving.metrics import Metrics
from tuxai.serving.models import check_inputs
from tuxai.serving.protocol import HEADER, decode_request, encode_response
from tuxai.serving.repository import ModelConfig, Repository, VersionState

log = logging.getLogger("tuxai.serving")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
MODEL = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")
HEADER_BYTES = HEADER.encode()
CONTROL = "/v2/repository/"  # the repository extension: always behind the token
REPOSITORY = re.compile(r"^/v2/repository/models/([^/]+)/(load|unload)$")
# The route label of /metrics' HTTP counter: a fixed set, whatever path is asked for (E8).
ROUTES = {"/v2/health/live": "health", "/v2/health/ready": "health", "/v2": "server", "/metrics": "metrics",
          "/v2/models": "models", "/v2/repository/index": "repository"}  # fmt: skip
ACTIONS = {"/infer": "infer", "/ready": "ready", None: "metadata"}
BEST_FIRST = (VersionState.READY, VersionState.LOADING, VersionState.UNLOADING)  # a model's state in the listing
MAX_BODY_BYTES = 64 * 1024 * 1024  # as Triton's --http-max-input-size
RETRY = [(b"retry-after", b"1")]
# What each error of the tree is on the wire (the first class that matches).
STATUS: tuple[tuple[type[TuxaiError], int, list[tuple[bytes, bytes]]], ...] = (
    (RequestTooLarge, 413, [(b"connection", b"close")]),
    (UsageError, 400, []),  # InferenceInputError among them
    (ModelNotFound, 404, []),
    (ModelNotReady, 503, RETRY),
    (ModelOverloaded, 503, RETRY),
    (ServingError, 500, []),
)


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"the request body is over this server's limit of {format_bytes(limit)} ({limit} bytes)",
                           hint="send less per request, or raise `tuxai serve --max-body`")  # fmt: skip


async def _body(scope: dict[str, Any], receive: Receive, limit: int) -> bytes:
    """The request body, or ``RequestTooLarge`` past ``limit`` bytes: at once when Content-Length
    says so (nothing read; a client that sent ``Expect: 100-continue`` sends nothing), else as
    soon as the chunks received add up past it."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            if value.isdigit() and (len(value) > 15 or int(value) > limit):
                raise _too_large(limit)
            break
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Send, status: int, body: bytes, content_type: bytes = b"application/json",
                extra: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, data: object, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send(send, status, json.dumps(data).encode(), extra=extra)


def wire_status(exc: TuxaiError) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The HTTP status and extra headers of an error (``STATUS``); 500 for one it does not name."""
    for kind, status, headers in STATUS:
        if isinstance(exc, kind):
            return status, headers
    return 500, []


class InferenceApp:
    """The ASGI callable. ``token``: required as ``Authorization: Bearer`` on every route but liveness,
    or with ``open_reads`` on the repository extension only."""

    def __init__(
        self, repository: Repository, token: str, *, open_reads: bool = False, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        if not token:
            raise ValueError("the inference app needs a bearer token (tuxai serve makes one when given none)")
        self.repository, self.token, self.open_reads = repository, token.encode(), open_reads
        self.max_body_bytes = max_body_bytes
        self.metrics = Metrics()
        self.drift = DriftBoard()  # a version with a drift-reference.json: its inputs' windows (serving.drift)
        self.draining = False
        repository.observe = self.metrics.batch

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        match = MODEL.match(path) if path.startswith("/v2/models/") else None
        route = ACTIONS[match.group(3)] if match is not None else ROUTES.get(path, "")
        if not route:
            route = "repository" if REPOSITORY.match(path) else "unknown"
        answered = 0

        async def counted(message: dict[str, Any]) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
            await send(message)

        try:
            await self._answer(scope, receive, counted, match)
        finally:
            self.metrics.response(route, answered or 500)  # nothing sent: uvicorn answers 500

    async def _answer(self, scope: dict[str, Any], receive: Receive, send: Send, match: re.Match[str] | None) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/v2/health/live":
            await _json(send, 200, {"live": True})
            return
        if (not self.open_reads or path.startswith(CONTROL)) and not bearer_ok(scope["headers"], self.token):
            await _json(send, 401, {"error": "a bearer token is required (Authorization: Bearer …)"},
                        [(b"www-authenticate", b"Bearer")])  # fmt: skip
            return
        try:
            await self._route(scope, receive, send, path, method, match)
        except TuxaiError as exc:
            status, extra = wire_status(exc)
            await _json(send, status, {"error": str(exc)}, extra)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for name in self.repository.names():
                    try:
                        await self.repository.load(name)
                    except UsageError as exc:  # its config.yaml is wrong: the others still load
                        log.error("model %s cannot load: %s", name, exc)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.draining = True
                for versions in self.repository.versions.values():
                    for version in versions.values():
                        if version.batcher is not None:
                            await version.batcher.drain()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: dict[str, Any], receive: Receive, send: Send, path: str, method: str,
                     match: re.Match[str] | None) -> None:  # fmt: skip
        if match is not None:
            name, number, action = match.group(1), match.group(2), match.group(3)
            version = None if number is None else _version(number)
            if action == "/infer" and method == "POST":
                await self._infer(scope, receive, send, name, version)
            elif action == "/ready":
                try:
                    found = self.repository.resolve(name, version)
                    await _json(send, 200, {"name": name, "version": str(found.number), "ready": True})
                except ModelNotReady as exc:  # KServe: a 4xx says "not ready"
                    await _json(send, 400, {"name": name, "ready": False, "error": str(exc)})
            else:
                await self._metadata(send, name, version)
            return
        if path == "/v2/health/ready":
            ready = not self.draining and all(
                any(v.state is VersionState.READY for v in versions.values())
                for versions in self.repository.versions.values()
            )
            await _json(send, 200 if ready else 400, {"ready": ready})
        elif path == "/v2":
            extensions = ["binary_tensor_data", "model_repository"]
            await _json(send, 200, {"name": "tuxai", "version": __version__, "extensions": extensions})
        elif path == "/metrics":
            body = self.metrics.render() + self.drift.text()
            await _send(send, 200, body.encode(), b"text/plain; version=0.0.4")
        elif path == "/v2/models" and method == "GET":
            await _json(send, 200, {"models": self._listing()})
        elif path == "/v2/repository/index" and method == "POST":
            await _json(send, 200, self._index())
        elif (repo := REPOSITORY.match(path)) is not None and method == "POST":
            await _body(scope, receive, self.max_body_bytes)
            if repo.group(2) == "load":
                await self.repository.load(repo.group(1), "load request")
            else:
                await self.repository.unload(repo.group(1))
            await _json(send, 200, {})
        else:
            await _json(send, 404, {"error": f"no route {method} {path}"})

    def _index(self) -> list[dict[str, Any]]:
        rows = []
        for name in self.repository.names():
            versions = self.repository.versions.get(name, {})
            if not versions:
                rows.append({"name": name, "state": VersionState.UNAVAILABLE, "reason": "not loaded"})
            for number, version in sorted(versions.items()):
                rows.append({"name": name, "version": str(number), "state": version.state, "reason": version.reason})
        return rows

    def _listing(self) -> list[dict[str, Any]]:
        """``GET /v2/models``: each model on disk, its state (the best of its versions') and its versions."""
        rows = []
        for name in self.repository.names():
            versions = sorted(self.repository.versions.get(name, {}).items())
            states = {v.state for _, v in versions}
            state = next((s for s in BEST_FIRST if s in states), VersionState.UNAVAILABLE)
            listed = [{"version": str(n), "state": v.state, "reason": v.reason} for n, v in versions]
            rows.append({"name": name, "state": state, "versions": listed})
        return rows

    async def _metadata(self, send: Send, name: str, number: int | None) -> None:
        version = self.repository.resolve(name, number)
        model = version.model
        assert model is not None
        versions = sorted(self.repository.versions[name].items())
        await _json(
            send,
            200,
            {
                "name": name,
                "versions": [str(n) for n, v in versions if v.state is VersionState.READY],
                "platform": model.platform,
                "inputs": [s.describe() for s in model.inputs],
                "outputs": [s.describe() for s in model.outputs],
            },
        )

    async def _infer(self, scope: dict[str, Any], receive: Receive, send: Send, name: str, number: int | None) -> None:
        started = time.perf_counter()
        status, model_label, version_label = 200, "", ""  # a name the repository does not know: model=""
        try:
            # The body is read before the version is resolved: no await may fall between resolve and submit,
            # or a swap could drain and close the resolved version in that gap (a 500 under load).
            try:
                body = await _body(scope, receive, self.max_body_bytes)
            except TuxaiError as exc:
                status = wire_status(exc)[0]
                raise
            try:
                version = self.repository.resolve(name, number)
            except ModelNotFound:
                status, model_label = 404, name if name in self.repository.versions else ""
                raise
            except ModelNotReady:
                status, model_label = 503, name
                raise
            model_label, version_label = name, str(version.number)
            header = None
            for key, value in scope["headers"]:
                if key == HEADER_BYTES:
                    header = int(value) if value.isdigit() and len(value) <= 15 else -1
                    break
            try:
                requested = decode_request(body, header)
                model, batcher = version.model, version.batcher
                assert model is not None and batcher is not None
                size = check_inputs(model, requested.inputs, version.config.max_batch_size)
                if requested.outputs is not None:
                    known = {s.name for s in model.outputs}
                    unknown = [o for o in requested.outputs if o not in known]
                    if unknown:
                        raise InferenceInputError(f"unknown outputs {unknown}; the model has {sorted(known)}")
                outputs = await batcher.submit(requested.inputs, size)
            except ModelOverloaded as exc:
                status = 503
                raise ModelOverloaded(f"model '{name}' is overloaded: {exc}", hint="retry in a moment") from None
            except TuxaiError as exc:
                status = wire_status(exc)[0]
                raise
            except Exception as exc:  # the model failed on valid input: 500 (logged), the worker lives
                status = 500
                log.exception("model %s version %s failed on a request", name, version_label)
                await _json(send, 500, {"error": f"model '{name}' failed: {exc}"})
                return
            self.drift.observe(version, requested.inputs)  # the model answered; counting never fails a request
            payload, head = encode_response(name, version_label, outputs, requested)
            extra = [(b"inference-header-content-length", str(head).encode())] if head is not None else []
            await _send(send, 200, payload, b"application/octet-stream" if head is not None else b"application/json",
                        extra)  # fmt: skip
        finally:
            self.metrics.request(model_label, version_label, status, time.perf_counter() - started)


def _version(text: str) -> int:
    if not text.isdigit():
        raise InferenceInputError(f"model version must be a number, got {text!r}")
    return int(text)


async def watch(repository: Repository, period_s: float = 1.0) -> None:
    """Reload models whose version directories changed (a new version appears: swapped in)."""
    while True:
        await asyncio.sleep(period_s)
        for name in repository.changed():
            try:
                await repository.load(name, "watch")
            except UsageError as exc:
                log.error("watch: cannot reload model %s: %s", name, exc)


__all__ = ["InferenceApp", "ModelConfig", "watch"]
