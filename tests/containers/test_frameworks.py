"""Issue 19's done-when: a PyTorch job and a TensorFlow job, each in its own image built by
``tuxai image build`` (torch 2.13.0 CPU and tensorflow-cpu 2.21.0 from this host's local index),
run side by side on the simulated 2-GPU box, each seeing only its own fake CDI GPU."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.containers.conftest import BUILD_TIMEOUT_S
from tests.daemon_helpers import DaemonProcess
from tuxai.model.job import JobState

pytestmark = [pytest.mark.containers, pytest.mark.timeout(2 * BUILD_TIMEOUT_S)]  # cold: both images built here

IMPORT = {
    "torch": "import torch; print('framework torch', torch.__version__, int(torch.tensor([1, 2]).sum()))",
    "tensorflow": "import tensorflow as tf; print('framework tensorflow', tf.__version__, int(tf.reduce_sum([1, 2])))",
}


def _output(daemon: DaemonProcess, job_id: int) -> str:
    log = daemon.home / "jobs" / str(job_id) / "output.log"
    return log.read_text() if log.exists() else ""


def test_I19_a_pytorch_job_and_a_tensorflow_job_run_side_by_side_each_with_its_own_gpu(
    daemon: DaemonProcess, framework_images: dict[str, str], tmp_path: Path
) -> None:
    go = tmp_path / "go"
    ids = {}
    for name, image in framework_images.items():
        script = f'ls /dev | grep fakegpu; python3 -c "{IMPORT[name]}"; while [ ! -e {go} ]; do sleep 0.05; done'
        ids[name] = daemon.client.submit(
            {"command": ["sh", "-c", script], "gpus": 1, "image": image, "workdir": str(tmp_path)}
        )
    logs: dict[str, str] = {}
    deadline = time.monotonic() + 90
    while not all("framework" in logs.get(name, "") for name in ids):
        assert time.monotonic() < deadline, logs
        time.sleep(0.1)
        logs = {name: _output(daemon, job_id) for name, job_id in ids.items()}
    assert [daemon.job(i).state for i in ids.values()] == [JobState.RUNNING] * 2  # both at once
    go.touch()
    jobs = daemon.wait_all(list(ids.values()), timeout_s=60)
    assert [j.state for j in jobs.values()] == [JobState.SUCCEEDED] * 2, logs
    assert re.search(r"^framework torch 2\.13\.0\+cpu 3$", logs["torch"], re.MULTILINE), logs["torch"]
    assert re.search(r"^framework tensorflow 2\.21\.0 3$", logs["tensorflow"], re.MULTILINE), logs["tensorflow"]
    seen = {name: re.findall(r"^fakegpu\d$", log, re.MULTILINE) for name, log in logs.items()}
    assert all(len(devices) == 1 for devices in seen.values()) and seen["torch"] != seen["tensorflow"], seen
