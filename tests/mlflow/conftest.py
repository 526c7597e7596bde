"""The MLflow tier (``make test-mlflow``): MLflow's own client against a real SQLite store, one daemon on
the simulated 2-GPU box for the whole run. MLflow's usage telemetry is off: these tests reach no network."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, made once for the tier: MLflow's migrations take seconds per store, a
    copy of the file milliseconds (``seed_store``)."""
    from mlflow import MlflowClient

    began = time.monotonic()
    folder = tmp_path_factory.mktemp("store")
    MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db").search_experiments()
    print(f"\nMLflow store made in {time.monotonic() - began:.1f} s")
    return folder / "mlflow.db"


def seed_store(template: Path, data: Path) -> str:
    """``data``'s user's own store (``<data>/tuxai/mlflow/mlflow.db``, where tuxai looks with
    ``XDG_DATA_HOME=data``) as a copy of the template; its tracking URI."""
    (data / "tuxai/mlflow").mkdir(parents=True)
    shutil.copyfile(template, data / "tuxai/mlflow/mlflow.db")
    return f"sqlite:///{data}/tuxai/mlflow/mlflow.db"
