"""The inference server as a raw ASGI app (no framework on the hot path): KServe v2 REST,
Triton's binary tensor extension, the repository extension, Prometheus metrics, a token.

    GET  /v2/health/live | /v2/health/ready | /v2
    GET  /v2/models/{name}[/versions/{v}]            metadata
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer
    POST /v2/repository/index | /v2/repository/models/{name}/load | /unload
    GET  /metrics
"""

from __future__ import annotations

import asyncio
import bisect
import hmac
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tuxai import __version__
from tuxai.errors import UsageError
from tuxai.serving.batcher import Overloaded
from tuxai.serving.models import check_inputs
from tuxai.serving.protocol import HEADER, ProtocolError, decode_request, encode_response
from tuxai.serving.repository import ModelConfig, Repository, Version

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
MODEL = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")
HEADER_BYTES = HEADER.encode()
REPOSITORY = re.compile(r"^/v2/repository/models/([^/]+)/(load|unload)$")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    """A Prometheus histogram: cumulative buckets, sum, count."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        """Count one value (in its own bucket; the exposition adds them up)."""
        self.sum += value
        self.count += 1
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            self.counts[index] += 1

    def lines(self, name: str, labels: str) -> list[str]:
        """Exposition lines (cumulative buckets)."""
        cumulative = itertools.accumulate(self.counts)
        out = [f'{name}_bucket{{{labels},le="{b:g}"}} {c}' for b, c in zip(self.buckets, cumulative, strict=True)]
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        return [*out, f"{name}_sum{{{labels}}} {self.sum:.9g}", f"{name}_count{{{labels}}} {self.count}"]


class Metrics:
    """Requests, failures, latency, queue time and batch sizes per model and version."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}
        self.queue: dict[tuple[str, str], Histogram] = {}
        self.batches: dict[tuple[str, str], Histogram] = {}

    def request(self, model: str, version: str, status: int, seconds: float) -> None:
        """One answered inference request."""
        key = (model, version, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.latency.setdefault((model, version), Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, version: Version, size: int, waits: list[float]) -> None:
        """One batch the model ran, and how long its requests waited."""
        key = (version.name, str(version.number))
        self.batches.setdefault(key, Histogram(BATCH_BUCKETS)).observe(size)
        queue = self.queue.setdefault(key, Histogram(LATENCY_BUCKETS))
        for wait in waits:
            queue.observe(wait)

    def render(self) -> str:
        """The scrape body."""
        lines = ["# HELP tuxai_serve_requests_total Inference requests by model, version and HTTP status.",
                 "# TYPE tuxai_serve_requests_total counter"]  # fmt: skip
        for (model, version, status), count in sorted(self.requests.items()):
            lines.append(f'tuxai_serve_requests_total{{model="{model}",version="{version}",code="{status}"}} {count}')
        lines += ["# HELP tuxai_serve_failures_total Inference requests that failed (4xx and 5xx).",
                  "# TYPE tuxai_serve_failures_total counter"]  # fmt: skip
        failures: dict[tuple[str, str], int] = {}
        for (model, version, status), count in self.requests.items():
            if status >= 400:
                failures[(model, version)] = failures.get((model, version), 0) + count
        for (model, version), count in sorted(failures.items()):
            lines.append(f'tuxai_serve_failures_total{{model="{model}",version="{version}"}} {count}')
        for name, help_text, table in (
            ("tuxai_serve_request_seconds", "Request latency in the server.", self.latency),
            ("tuxai_serve_queue_seconds", "Time a request waited for its batch.", self.queue),
            ("tuxai_serve_batch_size", "Items in each batch the model ran.", self.batches),
        ):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
            for (model, version), histogram in sorted(table.items()):
                lines += histogram.lines(name, f'model="{model}",version="{version}"')
        return "\n".join(lines) + "\n"


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Send, status: int, body: bytes, content_type: bytes = b"application/json",
                extra: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, data: object, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send(send, status, json.dumps(data).encode(), extra=extra)


class InferenceApp:
    """The ASGI callable. ``token``: required as ``Authorization: Bearer`` on every route but liveness."""

    def __init__(self, repository: Repository, token: str = "") -> None:
        self.repository, self.token = repository, token.encode()
        self.metrics = Metrics()
        self.draining = False
        repository.observe = self.metrics.batch

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/v2/health/live":
            await _json(send, 200, {"live": True})
            return
        if self.token and not self._authorized(scope):
            await _json(send, 401, {"error": "a bearer token is required (Authorization: Bearer …)"},
                        [(b"www-authenticate", b"Bearer")])  # fmt: skip
            return
        try:
            await self._route(scope, receive, send, path, method)
        except ProtocolError as exc:
            await _json(send, 400, {"error": str(exc)})
        except UsageError as exc:
            await _json(send, 400, {"error": exc.message})
        except LookupError as exc:
            await _json(send, 404, {"error": str(exc.args[0])})

    def _authorized(self, scope: dict[str, Any]) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization" and value.startswith(b"Bearer "):
                return hmac.compare_digest(value[7:].strip(), self.token)
        return False

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for name in self.repository.names():
                    await self.repository.load(name)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.draining = True
                for versions in self.repository.versions.values():
                    for version in versions.values():
                        if version.batcher is not None:
                            await version.batcher.drain()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: dict[str, Any], receive: Receive, send: Send, path: str, method: str) -> None:
        match = MODEL.match(path)
        if match is not None:
            name, number, action = match.group(1), match.group(2), match.group(3)
            version = None if number is None else _version(number)
            if action == "/infer" and method == "POST":
                await self._infer(scope, receive, send, name, version)
            elif action == "/ready":
                try:
                    found = self.repository.resolve(name, version)
                    await _json(send, 200, {"name": name, "version": str(found.number), "ready": True})
                except RuntimeError as exc:
                    await _json(send, 400, {"name": name, "ready": False, "error": str(exc)})
            else:
                await self._metadata(send, name, version)
            return
        if path == "/v2/health/ready":
            ready = not self.draining and all(
                any(v.state == "READY" for v in versions.values()) for versions in self.repository.versions.values()
            )
            await _json(send, 200 if ready else 400, {"ready": ready})
        elif path == "/v2":
            extensions = ["binary_tensor_data", "model_repository"]
            await _json(send, 200, {"name": "tuxai", "version": __version__, "extensions": extensions})
        elif path == "/metrics":
            await _send(send, 200, self.metrics.render().encode(), b"text/plain; version=0.0.4")
        elif path == "/v2/repository/index" and method == "POST":
            await _json(send, 200, self._index())
        elif (repo := REPOSITORY.match(path)) is not None and method == "POST":
            await _body(receive)
            if repo.group(2) == "load":
                await self.repository.load(repo.group(1))
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
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": "not loaded"})
            for number, version in sorted(versions.items()):
                rows.append({"name": name, "version": str(number), "state": version.state, "reason": version.reason})
        return rows

    async def _metadata(self, send: Send, name: str, number: int | None) -> None:
        try:
            version = self.repository.resolve(name, number)
        except RuntimeError as exc:
            await _json(send, 400, {"error": str(exc)})
            return
        model = version.model
        assert model is not None
        await _json(
            send,
            200,
            {
                "name": name,
                "versions": [str(n) for n, v in sorted(self.repository.versions[name].items()) if v.state == "READY"],
                "platform": model.platform,
                "inputs": [s.describe() for s in model.inputs],
                "outputs": [s.describe() for s in model.outputs],
            },
        )

    async def _infer(self, scope: dict[str, Any], receive: Receive, send: Send, name: str, number: int | None) -> None:
        started = time.perf_counter()
        status, label = 200, "?"
        try:
            try:
                version = self.repository.resolve(name, number)
            except RuntimeError as exc:
                status = 503
                await _json(send, 503, {"error": str(exc)}, [(b"retry-after", b"1")])
                return
            label = str(version.number)
            header = None
            for key, value in scope["headers"]:
                if key == HEADER_BYTES:
                    header = int(value) if value.isdigit() else -1
                    break
            body = await _body(receive)
            try:
                requested = decode_request(body, header)
                model, batcher = version.model, version.batcher
                assert model is not None and batcher is not None
                size = check_inputs(model, requested.inputs, version.config.max_batch_size)
                if requested.outputs is not None:
                    known = {s.name for s in model.outputs}
                    unknown = [o for o in requested.outputs if o not in known]
                    if unknown:
                        raise ProtocolError(f"unknown outputs {unknown}; the model has {sorted(known)}")
                outputs = await batcher.submit(requested.inputs, size)
            except ProtocolError:
                status = 400
                raise
            except Overloaded as exc:
                status = 503
                await _json(send, 503, {"error": f"model '{name}' is overloaded: {exc}"}, [(b"retry-after", b"1")])
                return
            except Exception as exc:  # noqa: BLE001 (the model failed on valid input: 500, the worker lives)
                status = 500
                await _json(send, 500, {"error": f"model '{name}' failed: {exc}"})
                return
            payload, head = encode_response(name, label, outputs, requested)
            extra = [(b"inference-header-content-length", str(head).encode())] if head is not None else []
            await _send(send, 200, payload, b"application/octet-stream" if head is not None else b"application/json",
                        extra)  # fmt: skip
        finally:
            self.metrics.request(name, label, status, time.perf_counter() - started)


def _version(text: str) -> int:
    if not text.isdigit():
        raise ProtocolError(f"model version must be a number, got {text!r}")
    return int(text)


async def watch(repository: Repository, period_s: float = 1.0) -> None:
    """Reload models whose version directories changed (a new version appears: swapped in)."""
    while True:
        await asyncio.sleep(period_s)
        for name in repository.changed():
            try:
                await repository.load(name)
            except UsageError as exc:
                print(f"watch: {exc}", flush=True)


__all__ = ["InferenceApp", "ModelConfig", "watch"]
