"""`tuxai serve models:/NAME@ALIAS` as a process for the tier's tests: started, its URL, stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def serving_alias(tmp_path: Path, data: Path, target: str = "models:/digits@champion") -> Iterator[str]:
    """The server's URL once it wrote its endpoint file (the user's store under ``data``); on the way
    out it is sent SIGTERM and must exit 0 (its log in the assertion otherwise)."""
    endpoint, log = tmp_path / "endpoint", tmp_path / "serve.log"
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    env.pop("MLFLOW_TRACKING_URI", None)
    argv = [sys.executable, "-m", "tuxai", "serve", target, "--port", "0", "--endpoint-file", str(endpoint)]
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not endpoint.exists():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield endpoint.read_text().strip()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, log.read_text()
