"""A plain `tuxai submit` job as an MLflow run (issue 17): opened by the CLI, the job given its
MLFLOW_TRACKING_URI and MLFLOW_RUN_ID, ended by the user's watcher with the job's tags and metrics —
read back with MLflow's stock client and through `tuxai mlflow ui`, MLflow's real UI on loopback.
TUXAI_MLFLOW=off, or no MLflow installed: no run, no word but the daemon's."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon_helpers import DaemonProcess
from tests.e2e.test_lifecycle_no_mlflow import WITHOUT_MLFLOW
from tests.mlflow.conftest import seed_store

NOBODY = 65534

pytestmark = pytest.mark.mlflow


def submit(
    daemon: DaemonProcess, data: Path, *args: str, launcher: tuple[str, ...] = ("-m", "tuxai"), **env: str
) -> tuple[int, str]:
    """``tuxai submit ARGS`` as a user whose data (and MLflow store) is under ``data``; the job's id, its stderr."""
    given = {**os.environ, "TUXAI_HOME": str(daemon.home), "XDG_DATA_HOME": str(data), **env}
    given.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, *launcher, "submit", "--json", *args], capture_output=True, text=True, env=given,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split('"id":')[1].strip(" }\n")), done.stderr


def ended_run(client: Any, experiment: str, job_id: int) -> Any:
    """The job's run once its watcher ended it (polled)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id], f"tags.`tuxai.job_id` = '{job_id}'") if found else []
        if runs and runs[0].info.status != "RUNNING":
            return runs[0]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id}'s run did not end")


@dataclass(frozen=True)
class Tracked:
    """A `tuxai submit` job whose run ended: the user's data folder, the job, its run, what the job saw; and
    `tuxai mlflow ui` over the same store, started first (its start overlaps the job's)."""

    data: Path
    uri: str
    job_id: int
    run: Any
    seen: str
    said: str
    ui: subprocess.Popen[bytes]
    ui_port: int
    ui_began: float


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def tracked(
    shared_daemon: DaemonProcess, store_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tracked]:
    """One job on a GPU submitted with tracking on, its run read back once the watcher ended it."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("tracked")
    data, out = folder / "data", folder / "seen"
    uri = seed_store(store_template, data)
    env = {**os.environ, "XDG_DATA_HOME": str(data)}
    env.pop("MLFLOW_TRACKING_URI", None)
    port, ui_began = _free_port(), time.monotonic()
    with open(folder / "ui.log", "wb") as log:
        argv = [sys.executable, "-m", "tuxai", "mlflow", "ui", "--port", str(port)]
        ui = subprocess.Popen(argv, stdout=log, stderr=log, env=env, start_new_session=True)
    try:
        began = time.monotonic()
        job_id, said = submit(
            shared_daemon, data, "--gpus", "1", "--name", "probe", "-w", str(folder), "--",
            "sh", "-c", f'echo "$MLFLOW_TRACKING_URI $MLFLOW_RUN_ID" > {out}; sleep 2',  # seen by telemetry's samples
        )  # fmt: skip
        print(f"\ntracked submit: {time.monotonic() - began:.2f} s")
        run = ended_run(MlflowClient(tracking_uri=uri), "tuxai", job_id)
        yield Tracked(data, uri, job_id, run, out.read_text(), said, ui, port, ui_began)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)  # MLflow's CLI and the uvicorn it started
        ui.wait(timeout=60)
        with contextlib.suppress(OSError, ValueError):  # the user's watcher would idle on for 10 minutes
            os.kill(watcher_pid(data), signal.SIGTERM)


def watcher_pid(data: Path) -> int:
    """The pid of the user's run watcher (in its lock file)."""
    return int((data / "tuxai/mlflow/open/watcher.lock").read_text())


def test_E17_1_a_submitted_job_is_an_mlflow_run_with_tuxai_tags_and_metrics(
    shared_daemon: DaemonProcess, tracked: Tracked
) -> None:
    run, job = tracked.run, shared_daemon.job(tracked.job_id)
    assert tracked.said.startswith("note: simulated inventory") and tracked.said.count("\n") == 1, tracked.said
    assert tracked.seen.split() == [tracked.uri, run.info.run_id]  # the job's own mlflow calls land on this run
    assert run.info.run_name == "probe" and run.info.status == "FINISHED"
    assert run.data.params["gpus"] == "1" and run.data.params["command"].startswith("sh -c 'echo")
    tags = run.data.tags
    assert tags["tuxai.job_id"] == str(job.id) and tags["tuxai.user"] == job.user and tags["tuxai.state"] == "succeeded"
    assert tags["tuxai.gpus"] == job.gpus[0] and tags["tuxai.gpu_models"] and tags["tuxai.energy_method"]
    metrics = {"tuxai.gpu_hours", "tuxai.energy_kwh", "tuxai.co2e_kg", "tuxai.ran_s", "tuxai.peak_gpu_memory_bytes"}
    assert metrics <= set(run.data.metrics), run.data.metrics
    assert not list((tracked.data / "tuxai/mlflow/open").glob("*.json"))  # the run's ledger gone with it


def ui_answering(tracked: Tracked) -> None:
    """Once MLflow's UI answers on its port (polled: its health page needs no login)."""
    log = tracked.data.parent / "ui.log"
    while True:
        assert tracked.ui.poll() is None and time.monotonic() - tracked.ui_began < 280, log.read_text()
        try:
            httpx.get(f"http://127.0.0.1:{tracked.ui_port}/health", timeout=30)
            return
        except httpx.TransportError:
            time.sleep(0.2)


def ui_login(tracked: Tracked) -> tuple[str, str, Path]:
    """The user name `tuxai mlflow ui` printed, the password in the file whose path it printed, that path."""
    said = re.search(r"user (\S+), password in (\S+)\)", (tracked.data.parent / "ui.log").read_text())
    assert said is not None, (tracked.data.parent / "ui.log").read_text()
    return said[1], Path(said[2]).read_text().strip(), Path(said[2])


@pytest.mark.timeout(300)  # MLflow's server imports a great deal: 40 s on the 2-core machine under load
def test_E17_3_mlflow_ui_serves_mlflows_own_ui_on_loopback_over_the_users_store(tracked: Tracked) -> None:
    ui_answering(tracked)
    user, password, _ = ui_login(tracked)
    print(f"\nMLflow's UI answered {time.monotonic() - tracked.ui_began:.1f} s after its start")
    with httpx.Client(base_url=f"http://127.0.0.1:{tracked.ui_port}", timeout=30, auth=(user, password)) as http:
        page = http.get("/")
        assert page.status_code == 200 and "<!doctype html>" in page.text.lower() and "static-files" in page.text
        experiment = http.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "tuxai"})
        found = http.post(
            "/api/2.0/mlflow/runs/search", json={"experiment_ids": [experiment.json()["experiment"]["experiment_id"]]}
        )
        assert [r["info"]["run_id"] for r in found.json()["runs"]] == [tracked.run.info.run_id]
    with pytest.raises(httpx.ConnectError):  # loopback's 127.0.0.1 only: another local address is refused
        httpx.get(f"http://127.0.0.2:{tracked.ui_port}/", timeout=5)


def as_nobody_http(port: int, method: str, path: str, body: object = None, auth: str | None = None) -> int:
    """The status of an HTTP request to 127.0.0.1:``port`` from ``curl`` running as uid/gid 65534."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method]
    if body is not None:
        argv += ["-H", "content-type: application/json", "-d", json.dumps(body)]
    if auth is not None:
        argv += ["-u", auth]
    done = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, cwd="/tmp", user=NOBODY,
        group=NOBODY, extra_groups=[], timeout=60, check=True,
    )  # fmt: skip
    return int(done.stdout)


@pytest.mark.timeout(300)
def test_T2_another_local_user_can_neither_read_nor_change_anything_through_the_users_mlflow_ui(
    tracked: Tracked,
) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: to run curl as another user (nobody)")
    from mlflow import MlflowClient

    ui_answering(tracked)
    run_id, port = tracked.run.info.run_id, tracked.ui_port
    experiment = MlflowClient(tracking_uri=tracked.uri).get_experiment_by_name("tuxai")
    assert experiment is not None
    tried = [
        ("GET", "/", None),
        ("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=tuxai", None),
        ("POST", "/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [experiment.experiment_id]}),
        ("GET", f"/api/2.0/mlflow/runs/get?run_id={run_id}", None),
        ("POST", "/api/2.0/mlflow/runs/set-tag", {"run_id": run_id, "key": "owned", "value": "by nobody"}),
        ("POST", "/api/2.0/mlflow/runs/delete", {"run_id": run_id}),
        ("POST", "/api/2.0/mlflow/registered-models/create", {"name": "planted"}),
        ("POST", "/api/2.0/mlflow/registered-models/alias", {"name": "planted", "alias": "prod", "version": "1"}),
    ]
    refused = {(method, path): as_nobody_http(port, method, path, body) for method, path, body in tried}
    assert set(refused.values()) == {401}, refused
    user, _, password_file = ui_login(tracked)
    for guess in (f"{user}:guess", "admin:password1234"):  # MLflow's old default admin among the guesses
        assert as_nobody_http(port, "POST", "/api/2.0/mlflow/runs/delete", {"run_id": run_id}, auth=guess) == 401
    mode = stat.S_IMODE(password_file.stat().st_mode), stat.S_IMODE(password_file.parent.stat().st_mode)
    assert mode == (0o600, 0o700), oct(mode[0])
    after = MlflowClient(tracking_uri=tracked.uri).get_run(run_id)  # the store intact
    assert after.info.lifecycle_stage == "active" and "owned" not in after.data.tags
    assert not MlflowClient(tracking_uri=tracked.uri).search_registered_models("name = 'planted'")


def test_E17_1_tracking_off_or_without_mlflow_a_job_is_submitted_with_no_run_and_no_word(
    shared_daemon: DaemonProcess, tmp_path: Path
) -> None:
    off, said_off = submit(shared_daemon, tmp_path / "off", "--", "true", TUXAI_MLFLOW="off")
    absent, said_absent = submit(shared_daemon, tmp_path / "absent", "--", "true", launcher=("-c", WITHOUT_MLFLOW))
    assert said_off == said_absent and said_off.startswith("note: simulated") and said_off.count("\n") == 1
    for job_id in (off, absent):
        assert shared_daemon.client.wait(job_id, timeout_s=60).state == "succeeded"
    assert not (tmp_path / "off/tuxai/mlflow").exists() and not (tmp_path / "absent/tuxai/mlflow").exists()


IMPORTS_MLFLOW = (  # the CLI, saying at exit whether it imported MLflow
    "import atexit, sys; from tuxai.cli.main import run; sys.argv[0] = 'tuxai';"
    "atexit.register(lambda: print('mlflow imported:', 'mlflow' in sys.modules, file=sys.stderr)); run()"
)


def test_E17_5_a_tracked_submit_has_its_run_from_the_live_watcher_without_importing_mlflow(
    shared_daemon: DaemonProcess, tracked: Tracked
) -> None:
    from mlflow import MlflowClient

    out, watcher = tracked.data.parent / "seen-warm", watcher_pid(tracked.data)
    began = time.monotonic()
    job_id, said = submit(
        shared_daemon, tracked.data, "--", "sh", "-c", f'echo "$MLFLOW_RUN_ID" > {out}', launcher=("-c", IMPORTS_MLFLOW)
    )
    took = time.monotonic() - began
    untracked_began = time.monotonic()
    submit(shared_daemon, tracked.data, "--", "true", TUXAI_MLFLOW="off")
    print(f"\ntracked submit, watcher warm: {took:.2f} s; untracked: {time.monotonic() - untracked_began:.2f} s")
    assert "mlflow imported: False" in said, said
    run = ended_run(MlflowClient(tracking_uri=tracked.uri), "tuxai", job_id)
    assert out.read_text().strip() == run.info.run_id and run.info.status == "FINISHED"
    assert watcher_pid(tracked.data) == watcher  # the watcher that was alive opened it
