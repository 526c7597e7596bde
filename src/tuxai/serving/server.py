"""``tuxai serve MODEL_OR_REPO``: run the inference server (uvicorn, uvloop when installed, httptools).

Loopback by default; any other address needs ``--token-file``, then required on every route but
liveness. On loopback without one, inference stays open and the repository extension needs a
token the server makes (``tokens.py``). Request bodies stop at ``--max-body`` (413), a request's
line and headers at 64 KiB (431). SIGTERM drains: no new connections, in-flight requests
answered, then exit. A server none of whose models loaded stops at once, non-zero, each model's
reason logged (Triton's default), unless ``--allow-empty`` keeps it up for models to come (the
watch, or ``POST /v2/repository/models/<name>/load``). Where it listens, the head cap and the
token check are the daemon's API's too (``tuxai.edge``). It logs through ``logging``
(``tuxai.serving``; ``tuxai serve --log-level``, formatted by ``tuxai.logs``), uvicorn's records
included; a change of the versions a model serves is one line (``repository.Repository.load``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from tuxai.edge.heads import HeadCappedHttpTools
from tuxai.edge.listen import display, is_loopback, listen_tcp
from tuxai.errors import ServingError, UsageError
from tuxai.serving.app import MAX_BODY_BYTES, InferenceApp, watch
from tuxai.serving.repository import ModelConfig, Repository, VersionState
from tuxai.serving.tokens import ControlToken, make_control_token, read_token_file

log = logging.getLogger("tuxai.serving")


@dataclass(frozen=True)
class ServeOptions:
    """The flags of ``tuxai serve``."""

    target: Path
    host: str = "127.0.0.1"
    port: int = 8000
    token_file: Path | None = None
    defaults: ModelConfig = field(default_factory=ModelConfig)
    watch: bool = True
    endpoint_file: Path | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    allow_empty: bool = False  # stay up when no model loaded


def _operator_token(options: ServeOptions) -> str | None:
    """The ``--token-file`` token; None on loopback without one (the server makes a control token)."""
    if options.token_file is not None:
        return read_token_file(options.token_file)
    if not is_loopback(options.host):
        raise UsageError(
            f"serving on {options.host} without a token would let anyone on the network use the models",
            hint="pass --token-file FILE (a secret, mode 0600), or --host 127.0.0.1",
        )
    return None


def open_repository(options: ServeOptions) -> Repository:
    """The repository ``options.target`` names: one model file, one model's versions, or many models."""
    target = options.target.expanduser()
    if not target.exists():
        raise UsageError(f"{target} does not exist", hint="pass a model file (.onnx, .pt) or a model repository")
    single = target if target.is_file() or target.suffix == ".savedmodel" else None
    if single is not None:
        return Repository(target.parent, options.defaults, single)
    if any(child.name.isdigit() for child in target.iterdir()):  # one model's directory of versions
        return Repository(target.parent, options.defaults, only=target.name)
    return Repository(target, options.defaults)


def nothing_loaded(repository: Repository, where: Path) -> ServingError | None:
    """The error of a server with no READY version at all (None when one serves)."""
    versions = [v for versions in repository.versions.values() for v in versions.values()]
    if any(v.state is VersionState.READY for v in versions):
        return None
    names = repository.names()
    for name in names:
        if not repository.versions.get(name) and name not in repository.unloaded:
            log.error("model %s: no version to serve (a directory 1/ holding model.onnx, model.pt or model.savedmodel)",
                      name)  # fmt: skip
    told = f"{', '.join(names)}: each line above says why" if names else "it has no model directory"
    return ServingError(f"no model could be loaded from {where} ({told})",
                        hint="fix them, or pass --allow-empty to stay up and load models later")  # fmt: skip


def run_server(options: ServeOptions) -> int:
    """Serve until SIGINT/SIGTERM.

    Raises:
        ServingError: no model loaded (without ``allow_empty``); UsageError: a bad flag or target.
    """
    repository = open_repository(options)
    token = _operator_token(options)
    sock = listen_tcp(options.host, options.port, "--port", backlog=2048)
    control: ControlToken | None = None
    try:
        if token is None:
            control = make_control_token(sock.getsockname()[1], os.environ)
            token = control.token
        app = InferenceApp(repository, token, open_reads=control is not None, max_body_bytes=options.max_body_bytes)
        return _serve(app, repository, sock, options, control)
    except (UsageError, ServingError):
        sock.close()
        raise
    finally:
        if control is not None:
            control.remove()


def _serve(app: InferenceApp, repository: Repository, sock: socket.socket, options: ServeOptions,
           control: ControlToken | None) -> int:  # fmt: skip
    host, port = sock.getsockname()[:2]
    try:
        import uvloop

        loop = "uvloop" if uvloop else "asyncio"
    except ImportError:
        loop = "asyncio"
    config = uvicorn.Config(
        app, loop=loop, http=HeadCappedHttpTools, lifespan="on", access_log=False, log_level="warning",
        log_config=None, timeout_graceful_shutdown=30, proxy_headers=False,  # uvicorn logs through our handler
    )  # fmt: skip
    server = uvicorn.Server(config)
    refused: list[ServingError] = []

    async def main() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        empty = nothing_loaded(repository, options.target) if server.started and not options.allow_empty else None
        if empty is not None:
            refused.append(empty)
            server.should_exit = True
        watching = asyncio.create_task(watch(repository)) if options.watch and repository.single is None else None
        if server.started and empty is None:
            endpoint = f"http://{display(host, port)}"
            for version in (v for versions in repository.versions.values() for v in versions.values()):
                log.info("model %s version %s: %s %s", version.name, version.number, version.state, version.reason)
            if control is not None:
                log.info("repository control (load, unload, index) needs the bearer token in %s", control.path)
            log.info("serving on %s (KServe v2: %s/v2/models/<name>/infer)", endpoint, endpoint)
            if options.endpoint_file is not None:
                options.endpoint_file.write_text(endpoint + "\n")
        try:
            await serving
        finally:
            if watching is not None:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching

    # uvicorn drains on SIGTERM/SIGINT, then raises the signal again for the previous handler:
    # ours, so that a drained server exits 0 instead of dying of the signal.
    stopped_by: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stopped_by.append(number))
    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    if refused:
        raise refused[0]
    log.info("drained and stopped%s", f" ({signal.Signals(stopped_by[0]).name})" if stopped_by else "")
    return 0
