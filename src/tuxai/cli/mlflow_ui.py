"""``tuxai mlflow ui``: MLflow's own UI over the store tuxai tracks into, bound to loopback.

MLflow's light client (``mlflow-skinny``, the ``tuxai[mlflow]`` extra) has no UI: its server's web
pages ship only with the full ``mlflow`` package. The command says so in one line rather than
serving a page of our own.

Loopback is shared by every local user, so the UI runs MLflow's own basic-auth app (security finding
T2): one admin user, ``tuxai``, whose random password lives in a 0600 file in the user's 0700
``<tracking_dir>/ui`` folder beside MLflow's auth database; nobody else may read, change or delete a
run, nor move a registry alias that ``tuxai serve models:/NAME@ALIAS`` would then serve.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from tuxai.api.home import read_private, write_private
from tuxai.cli.common import DebugOption, guard
from tuxai.errors import UsageError

mlflow_app = typer.Typer(help="MLflow: the tracking store and registry tuxai writes to (docs/lifecycle.md).")
UI_PAGE = Path("server") / "js" / "build" / "index.html"  # what the full package adds to the light client
UI_USER = "tuxai"


def ui_missing(package_dir: Path | None) -> str | None:
    """Why MLflow's UI cannot start from the ``mlflow`` package in ``package_dir`` (None: not installed);
    None when it can."""
    if package_dir is None:
        return "MLflow is not installed (pip install 'tuxai[mlflow]' tracks; the UI needs pip install mlflow)"
    if not (package_dir / UI_PAGE).is_file():
        return "MLflow's UI is not in mlflow-skinny, the light client tuxai[mlflow] installs: pip install mlflow"
    return None


def ui_login(folder: Path) -> tuple[Path, Path]:
    """MLflow's basic-auth configuration for the UI, in ``folder`` (made 0700): its path, and the path of the
    0600 file that holds the ``tuxai`` user's password (made once, random; kept across starts).

    Raises:
        UsageError: the password file is a link, or not the user's regular file.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    password_file, database = folder / "password", folder / "auth.db"
    if not password_file.is_file():  # an auth database's admin whose password is lost: begin it again
        database.unlink(missing_ok=True)
        write_private(password_file, secrets.token_urlsafe(24) + "\n")
    try:
        password = read_private(password_file).strip()
    except OSError as error:  # a link in its place is followed by no one
        raise UsageError(
            f"{password_file}: {error.strerror}: not your own regular file", hint=f"remove it: rm {password_file}"
        ) from None
    config = folder / "auth.ini"
    write_private(
        config,
        "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{database}\nadmin_username = {UI_USER}\nadmin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
    )
    return config, password_file


def ui_environment(config: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` for MLflow's basic-auth server: its configuration file, a fresh Flask secret, and no
    ``MLFLOW_AUTH_ADMIN_*`` of the caller's that would override the configured admin."""
    given = {key: value for key, value in env.items() if not key.startswith("MLFLOW_AUTH_ADMIN_")}
    return {**given, "MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32)}


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
    """MLflow's UI on 127.0.0.1 over your tracking store (MLFLOW_TRACKING_URI, else your own SQLite one),
    behind a login: user tuxai, its password in a file only you can read (the command prints its path)."""

    def action() -> int:
        from tuxai.lifecycle.tracking import artifact_location, tracking_dir, tracking_uri

        problem = ui_missing(_package_dir())
        if problem is None and importlib.util.find_spec("flask_wtf") is None:  # MLflow's login app needs it
            problem = "MLflow's UI login (its basic-auth app) needs Flask-WTF: pip install 'mlflow[auth]'"
        if problem is not None:
            raise UsageError(problem)
        # One worker: a UI for one person on loopback (MLflow's default of 4 took minutes to start on 2 loaded cores).
        argv = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", "1"]
        argv += ["--backend-store-uri", tracking_uri()]
        artifacts = artifact_location()
        if artifacts is not None:
            argv += ["--default-artifact-root", artifacts]
        config, password_file = ui_login(tracking_dir() / "ui")
        print(f"MLflow's UI: http://127.0.0.1:{port} (user {UI_USER}, password in {password_file})", file=sys.stderr)
        sys.stderr.flush()
        os.execve(sys.executable, argv, ui_environment(config, dict(os.environ)))
        return 0  # not reached: execv replaced this process

    raise typer.Exit(guard(action, debug))
