"""Issue 19: a model server in a container — `tuxai serve MODEL --image` through the real daemon, and a
served container attempt of `nobody` run by the shim itself (the model opened by the user, bound by descriptor)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from tests.containers.conftest import BUILD_TIMEOUT_S
from tests.daemon_helpers import DaemonProcess
from tests.serving_models import mlp_onnx
from tuxai.cli.jobs import serve_command
from tuxai.executor import podman, userdir
from tuxai.executor.rundir import Launch, read_status, write_launch, write_stop
from tuxai.model.container import Container
from tuxai.model.job import JobState, StopReason

pytestmark = [pytest.mark.containers, pytest.mark.timeout(BUILD_TIMEOUT_S)]  # a changed tree: a cold image build

NOBODY = 65534


def _infer(endpoint: str) -> tuple[int, ...]:
    """A KServe v2 infer over HTTP on 127.0.0.1 (tritonclient): the shape of the answer."""
    assert endpoint.startswith("http://127.0.0.1:"), endpoint
    client = triton.InferenceServerClient(endpoint.removeprefix("http://"))
    try:
        tensor = triton.InferInput("x", [3, 4], "FP32")
        tensor.set_data_from_numpy(np.ones((3, 4), dtype=np.float32))
        return tuple(client.infer("mlp", [tensor]).as_numpy("y").shape)
    finally:
        client.close()


def _fake_gpus_inside(name: str) -> list[str]:
    done = subprocess.run(["podman", "exec", name, "ls", "/dev"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return sorted(d for d in done.stdout.split() if d.startswith("fakegpu"))


def test_I19_tuxai_serve_image_answers_kserve_v2_from_the_image_with_only_its_gpu_and_cancels_with_grace(
    daemon: DaemonProcess, serve_image: str, public_tmp: Path
) -> None:
    model = mlp_onnx(public_tmp / "models" / "mlp.onnx", sizes=(4, 8, 2))
    argv = [sys.executable, "-m", "tuxai", "serve", str(model), "--image", serve_image, "--gpus", "1"]
    env = {**os.environ, "TUXAI_HOME": str(daemon.home)}
    cli = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert cli.stderr is not None
        said = cli.stderr.readline()  # "job N: interactive session …"
        job_id = int(said.split(":")[0].removeprefix("job "))
        deadline = time.monotonic() + 90
        job = daemon.job(job_id)
        while not job.endpoint and not job.state.terminal and time.monotonic() < deadline:
            time.sleep(0.1)
            job = daemon.job(job_id)
        assert job.endpoint, (job.state, daemon.log(job_id) if Path(job.log_path or "/-").exists() else said)
        assert job.spec.image == serve_image and job.spec.serve_model == str(model) and len(job.gpu_indices) == 1
        assert _infer(job.endpoint) == (3, 2)
        name = podman.container_name(Path(job.log_path or "").parent / f"run-{job.attempt}")
        assert _fake_gpus_inside(name) == [f"fakegpu{job.gpu_indices[0]}"]  # its own GPU by CDI name, not the other
        daemon.client.cancel(job_id)
        assert daemon.wait_all([job_id])[job_id].state == JobState.CANCELLED
        cli.wait(timeout=30)  # the attached CLI ends with its job (output and all)
        assert "drained and stopped (SIGTERM)" in daemon.log(job_id)  # the server inside got the grace's SIGTERM
    finally:
        if cli.poll() is None:
            cli.send_signal(signal.SIGKILL)
        cli.communicate(timeout=10)  # its pipes closed


def _attempt(tmp: Path, job: int, model: Path, image: str) -> Path:
    """A served container attempt of nobody's, its launch written: its run directory."""
    work, job_dir = tmp / f"work{job}", tmp / "jobs" / str(job)
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    job_dir.mkdir(parents=True)
    endpoint = str(job_dir / "endpoint")
    launch = Launch(job, 1, tuple(serve_command(model, {"image": image})), {"TUXAI_ENDPOINT_FILE": endpoint},
                    str(work), str(job_dir / "output.log"), job_dir=str(job_dir), user=(NOBODY, NOBODY, ()),
                    container=Container(image, 64 << 20, ("tuxai.dev/gpu=1",), "runc", model=str(model)))  # fmt: skip
    write_launch(job_dir / "run-1", launch)
    return job_dir / "run-1"


def _read(endpoint: Path) -> str:
    """The URL the server wrote ("" while the shim has not made the file or the server not written it)."""
    return endpoint.read_text().strip() if endpoint.exists() else ""


def _shim(run_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tuxai.executor.shim", str(run_dir)])


def test_I19_nobodys_served_model_is_the_file_it_could_read_bound_read_only_and_a_link_or_a_shut_one_is_refused(
    public_tmp: Path, serve_image: str, fake_gpus: tuple[Path, ...]
) -> None:
    shut = public_tmp / "shut"  # root's 0700: nobody cannot read the model in it on the host
    shut.mkdir(mode=0o700)
    secret = mlp_onnx(shut / "secret.onnx", sizes=(4, 8, 2))
    (public_tmp / "link.onnx").symlink_to(mlp_onnx(public_tmp / "mine" / "mlp.onnx", sizes=(4, 8, 2)))
    for job, model, why in (
        (1, secret, "Permission denied"),
        (2, public_tmp / "link.onnx", "it is reached through a link"),
    ):
        run_dir = _attempt(public_tmp, job, model, serve_image)
        assert _shim(run_dir).wait(timeout=60) == 0
        status = read_status(run_dir)
        assert status is not None and status.exit_code == 127, status
        assert f"cannot read model {model} as the job's user: {why}" in status.error
        assert not os.path.lexists(userdir.WORKDIRS / f"{podman.container_name(run_dir)}{userdir.MODEL}")
    model = public_tmp / "mine" / "mlp.onnx"
    run_dir = _attempt(public_tmp, 3, model, serve_image)
    shim, endpoint = _shim(run_dir), run_dir.parent / "endpoint"
    try:
        deadline = time.monotonic() + 90
        while not _read(endpoint) and shim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _infer(_read(endpoint)) == (3, 2), (run_dir.parent / "output.log").read_text()
        assert endpoint.stat().st_uid == NOBODY  # the server inside wrote the file the daemon reads, as nobody
        bound = userdir.WORKDIRS / f"{podman.container_name(run_dir)}{userdir.MODEL}"
        assert bound.is_file() and bound.read_bytes() == model.read_bytes()
        inspect = ["podman", "inspect", "--format", "{{json .Mounts}}", podman.container_name(run_dir)]
        mounts = json.loads(subprocess.run(inspect, capture_output=True, text=True, timeout=30, check=True).stdout)
        served = [m for m in mounts if m["Destination"] == str(model)]
        assert len(served) == 1 and served[0]["Source"] == str(bound) and served[0]["RW"] is False
    finally:
        write_stop(run_dir, StopReason.CANCEL)
        shim.send_signal(signal.SIGTERM)
        shim.wait(timeout=60)
    status = read_status(run_dir)
    assert status is not None and status.stop_reason is StopReason.CANCEL, status
    assert not os.path.lexists(bound)  # undone with the container
