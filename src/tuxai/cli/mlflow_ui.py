"""``tuxai mlflow ui``: MLflow's own UI over the store tuxai tracks into, bound to loopback.

MLflow's light client (``mlflow-skinny``, the ``tuxai[mlflow]`` extra) has no UI: its server's web
pages ship only with the full ``mlflow`` package. The command says so in one line rather than
serving a page of our own.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tuxai.cli.common import DebugOption, guard

mlflow_app = typer.Typer(help="MLflow: the tracking store and registry tuxai writes to (docs/lifecycle.md).")
UI_PAGE = Path("server") / "js" / "build" / "index.html"  # what the full package adds to the light client


def ui_missing(package_dir: Path | None) -> str | None:
    """Why MLflow's UI cannot start from the ``mlflow`` package in ``package_dir`` (None: not installed);
    None when it can."""
    if package_dir is None:
        return "MLflow is not installed (pip install 'tuxai[mlflow]' tracks; the UI needs pip install mlflow)"
    if not (package_dir / UI_PAGE).is_file():
        return "MLflow's UI is not in mlflow-skinny, the light client tuxai[mlflow] installs: pip install mlflow"
    return None


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@mlflow_app.command("ui")
def ui(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 5000,
    debug: DebugOption = False,
) -> None:
    """MLflow's UI on 127.0.0.1 over your tracking store (MLFLOW_TRACKING_URI, else your own SQLite one)."""

    def action() -> int:
        from tuxai.errors import UsageError
        from tuxai.lifecycle.tracking import artifact_location, tracking_uri

        problem = ui_missing(_package_dir())
        if problem is not None:
            raise UsageError(problem)
        # One worker: a UI for one person on loopback (MLflow's default of 4 took minutes to start on 2 loaded cores).
        argv = [sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        argv += ["--backend-store-uri", tracking_uri()]
        artifacts = artifact_location()
        if artifacts is not None:
            argv += ["--default-artifact-root", artifacts]
        print(f"MLflow's UI: http://127.0.0.1:{port}", file=sys.stderr, flush=True)
        os.execv(sys.executable, argv)
        return 0  # not reached: execv replaced this process

    raise typer.Exit(guard(action, debug))
