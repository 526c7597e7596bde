"""What the API refuses before a route runs, always in the one error shape ``{error, message, hint}``.

- ``Guard`` (pure ASGI middleware): on TCP every request needs the bearer token, ``/docs``
  and ``/openapi.json`` included (the Unix socket knows its peer from ``SO_PEERCRED``);
  a request body over ``MAX_BODY_BYTES`` is a 413, from ``Content-Length`` before anything
  is read, else by counting the chunks as the route reads them.
- the token is checked by ``edge.bearer.bearer_ok`` (shared with the model server): compared
  as bytes in constant time, any header bytes, no 500.
- ``error_response``: the shape as JSON with every non-ASCII character escaped, so no text
  (a lone surrogate a client sent) can fail to encode.
- ``validation_message``: FastAPI's ``RequestValidationError`` as one line naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from tuxai.api.peercred import peer_from_scope
from tuxai.edge.bearer import bearer_ok

MAX_BODY_BYTES = 2**20  # 1 MiB: a job spec with its submitter's whole environment is a few KiB
TOKEN_HINT = "send `Authorization: Bearer <token>`; the token is in <home>/token (mode 0600)"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ErrorResponse(JSONResponse):
    """``{"error", "message", "hint"}``, rendered with ``ensure_ascii`` (any text encodes)."""

    def __init__(self, status: int, error: str, message: str, hint: str = "", headers: Mapping[str, str] | None = None):
        super().__init__({"error": error, "message": message, "hint": hint}, status_code=status, headers=headers)

    def render(self, content: Any) -> bytes:
        """JSON, ASCII only: a lone surrogate in a message becomes ``\\udXXX``, not a 500."""
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class BodyTooLarge(HTTPException):
    """Raised from the guarded ``receive`` once a body passes the cap (FastAPI re-raises HTTP errors)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit // 2**20} MiB")
        self.limit = limit


def too_large(limit: int) -> ErrorResponse:
    """The 413 answer; the connection is closed (what is left of the body is not read)."""
    return ErrorResponse(
        413,
        "UsageError",
        f"the request body is larger than {limit // 2**20} MiB",
        "a job spec and its environment fit in a few KiB: send less",
        headers={"connection": "close"},
    )


def http_error(exc: HTTPException) -> ErrorResponse:
    """Starlette's HTTP errors (no such path, method not allowed, body too large) in our shape."""
    if isinstance(exc, BodyTooLarge):
        return too_large(exc.limit)
    hints = {404: "see /openapi.json for the paths", 405: "see /openapi.json for the methods of each path"}
    return ErrorResponse(exc.status_code, "UsageError", str(exc.detail), hints.get(exc.status_code, ""), exc.headers)


class Guard:
    """Pure ASGI middleware: the token on TCP, then the body cap, before any route."""

    def __init__(self, app: Any, token: str, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.token, self.max_body_bytes = app, token, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, or pass the request on with a ``receive`` that counts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        dashboard = str(scope.get("path", "")).startswith("/ui/")  # its session cookie is its credential (tuxai.ui)
        if peer_from_scope(scope) is None and not dashboard and not bearer_ok(headers, self.token):
            answer = ErrorResponse(
                401,
                "PermissionDenied",
                "no identity: on TCP every request needs the bearer token",
                TOKEN_HINT,
                headers={"www-authenticate": "Bearer"},
            )
            await answer(scope, receive, send)
            return
        declared = _content_length(headers)
        if declared is not None and declared > self.max_body_bytes:
            await too_large(self.max_body_bytes)(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def watching_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await too_large(self.max_body_bytes)(scope, receive, send)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The declared body size; an unreadable one counts as too large (``2**63``)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else 2**63
    return None


def validation_message(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line: ``offset: Input should be greater than or equal to 0``."""
    if not errors:
        return "the request is not valid"
    first = errors[0]
    kind = first.get("type", "")
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return f"the request body is not valid JSON: {detail} at character {where[0] if where else '?'}"
    if kind == "missing" and not where:
        return 'the request body is missing: send {"spec": {job file fields}, "environment": {VAR: value}}'
    if kind == "extra_forbidden" and where:
        return f"unknown field {where[-1]}" + (f" in {'.'.join(where[:-1])}" if where[:-1] else "") + more
    return f"{'.'.join(where) or 'the request'}: {first.get('msg', 'not valid')}{more}"
