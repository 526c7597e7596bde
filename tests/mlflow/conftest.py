"""The MLflow tier (``make test-mlflow``): MLflow's own client against a real SQLite store, one daemon on
the simulated 2-GPU box for the whole run. MLflow's usage telemetry is off: these tests reach no network."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, finish

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # inherited by the CLI and MLflow here; jobs get it by export
os.environ.pop("TUXAI_MLFLOW", None)  # tests/conftest.py turns tracking off for the other tiers


@pytest.fixture(scope="session")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon for the tier, stopped at the end."""
    began = time.monotonic()
    process = DaemonProcess(Path(tmp_path_factory.mktemp("mlflow")) / "home").start()
    print(f"\ndaemon up in {time.monotonic() - began:.1f} s")
    try:
        yield process
    finally:
        finish(process)
