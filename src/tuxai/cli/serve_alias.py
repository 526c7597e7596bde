"""``tuxai serve models:/NAME@ALIAS``: the registry's version served, the alias followed
(``tuxai.lifecycle.deploy``), the server itself the same as for a model repository."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuxai.serving.server import ServeOptions


def serve_alias(text: str, options: ServeOptions) -> int:
    """Fetch what ``text`` (``models:/NAME@ALIAS``) names, serve it, follow the alias until the server stops."""
    from tuxai.lifecycle.deploy import AliasFollower, parse_model_uri, serving_dir
    from tuxai.serving.server import run_server

    alias = parse_model_uri(text)
    root = serving_dir(alias)
    endpoint = options.endpoint_file or root / "endpoint"
    endpoint.unlink(missing_ok=True)

    def where() -> str:
        url = endpoint.read_text().strip() if endpoint.exists() else f"http://{options.host}:{options.port}"
        return f"{url} (tuxai serve on {socket.gethostname()}, pid {os.getpid()})"

    follower = AliasFollower(alias, root, where)
    follower.sync()
    thread = threading.Thread(target=follower.follow, name="alias-follower", daemon=True)
    thread.start()
    try:
        return run_server(dataclasses.replace(options, target=follower.directory, endpoint_file=endpoint, watch=True))
    finally:
        follower.stop.set()
        thread.join(timeout=10)
