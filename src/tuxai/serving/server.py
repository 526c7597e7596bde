"""``tuxai serve MODEL_OR_REPO``: run the inference server (uvicorn, uvloop when installed, httptools).

Loopback by default; any other address needs ``--token-file``. SIGTERM drains: no new
connections, in-flight requests answered, then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from tuxai.errors import UsageError
from tuxai.serving.app import InferenceApp, watch
from tuxai.serving.repository import ModelConfig, Repository

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


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


def _token(options: ServeOptions) -> str:
    if options.token_file is not None:
        try:
            token = options.token_file.read_text().strip()
        except OSError as exc:
            where = options.token_file
            raise UsageError(f"cannot read --token-file {where}: {exc.strerror}", hint="check the path") from None
        if not token:
            raise UsageError(f"--token-file {options.token_file} is empty", hint="put a long random string in it")
        return token
    if options.host not in LOOPBACK:
        raise UsageError(
            f"serving on {options.host} without a token would let anyone on the network use the models",
            hint="pass --token-file FILE (a secret, mode 0600), or --host 127.0.0.1",
        )
    return ""


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}", hint="pick another --port") from None
    sock.listen(2048)
    return sock


def build(options: ServeOptions) -> tuple[InferenceApp, Repository]:
    """The app and its repository for ``options`` (models load when the app starts)."""
    target = options.target.expanduser()
    if not target.exists():
        raise UsageError(f"{target} does not exist", hint="pass a model file (.onnx, .pt) or a model repository")
    single = target if target.is_file() or target.suffix == ".savedmodel" else None
    if single is not None:
        repository = Repository(target.parent, options.defaults, single)
    elif any(child.name.isdigit() for child in target.iterdir()):  # one model's directory of versions
        repository = Repository(target.parent, options.defaults, only=target.name)
    else:
        repository = Repository(target, options.defaults)
    return InferenceApp(repository, _token(options)), repository


def run_server(options: ServeOptions) -> int:
    """Serve until SIGINT/SIGTERM."""
    app, repository = build(options)
    sock = _socket(options.host, options.port)
    host, port = sock.getsockname()[:2]
    try:
        import uvloop

        loop = "uvloop" if uvloop else "asyncio"
    except ImportError:
        loop = "asyncio"
    config = uvicorn.Config(
        app, loop=loop, http="httptools", lifespan="on", access_log=False, log_level="warning",
        timeout_graceful_shutdown=30, proxy_headers=False,
    )  # fmt: skip
    server = uvicorn.Server(config)

    async def main() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        watching = asyncio.create_task(watch(repository)) if options.watch and repository.single is None else None
        if server.started:
            endpoint = f"http://{host}:{port}"
            for version in (v for versions in repository.versions.values() for v in versions.values()):
                print(f"model {version.name} version {version.number}: {version.state} {version.reason}".strip())
            print(f"serving on {endpoint} (KServe v2: {endpoint}/v2/models/<name>/infer)", flush=True)
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
    print("drained and stopped" + (f" ({signal.Signals(stopped_by[0]).name})" if stopped_by else ""), flush=True)
    return 0
