"""Issue 19: a model server in a container — `tuxai serve MODEL --image` through the real daemon, and a
served container attempt of `nobody` run by the shim itself (the model opened by the user, bound by descriptor)."""

from __future__ import annotations

import hashlib
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
from tuxai.executor.rundir import Launch, read_status, write_launch
from tuxai.model.container import Container
from tuxai.model.job import JobState

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


READ_AND_PUBLISH = (
    'sha256sum "$1" | cut -c1-64; (echo x >> "$1") 2>/dev/null && echo writable || echo read-only; '
    'echo http://127.0.0.1:9 > "$TUXAI_ENDPOINT_FILE"'
)
"""In place of the server (the test above runs one): the model's bytes, whether it can be written, the endpoint."""


def _attempt(tmp: Path, job: int, model: Path, image: str, script: str = "") -> Path:
    """A served container attempt of nobody's (``script``: a command in place of the server), its run directory."""
    work, job_dir = tmp / f"work{job}", tmp / "jobs" / str(job)
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    job_dir.mkdir(parents=True)
    endpoint = str(job_dir / "endpoint")
    command = ("sh", "-c", script, "served", str(model)) if script else tuple(serve_command(model, {"image": image}))
    launch = Launch(job, 1, command, {"TUXAI_ENDPOINT_FILE": endpoint},
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
    model = public_tmp / "mine" / "mlp.onnx"  # what the server would read: its bytes, and never a write
    os.chown(model, NOBODY, NOBODY)  # nobody's own file: only the read-only mount refuses the write inside
    run_dir = _attempt(public_tmp, 3, model, serve_image, READ_AND_PUBLISH)
    assert _shim(run_dir).wait(timeout=60) == 0
    status, output = read_status(run_dir), (run_dir.parent / "output.log").read_text().split()
    assert status is not None and status.exit_code == 0, (status, output)
    assert output == [hashlib.sha256(model.read_bytes()).hexdigest(), "read-only"]
    endpoint = run_dir.parent / "endpoint"
    assert _read(endpoint) == "http://127.0.0.1:9" and endpoint.stat().st_uid == NOBODY  # written inside, as nobody
    assert not os.path.lexists(userdir.WORKDIRS / f"{podman.container_name(run_dir)}{userdir.MODEL}")  # undone
