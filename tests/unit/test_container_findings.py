"""Session 7's review of container jobs (E6, E11c, E11d): a served image's endpoint on a Slurm node, what a
Kubernetes manifest cannot carry, one reader of the CDI specs that names a malformed one, one ``localhost/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tuxai.daemon import image_store
from tuxai.errors import UsageError
from tuxai.executor.podman import Host, Limits, run_argv
from tuxai.executor.rundir import Launch, read_launch, write_launch
from tuxai.executor.slurm import SlurmExecutor
from tuxai.executor.slurm_container import node_container
from tuxai.executor.slurm_node import node_run
from tuxai.k8s import manifests
from tuxai.model import container as model_container
from tuxai.model.container import CdiSpec, Container, cdi_names, read_cdi_specs
from tuxai.model.job import JobSpec
from tuxai.model.jobfile import load_job_file
from tuxai.model.resources import Allocation, GpuShare

IMAGE = "localhost/tuxai/serve:3f2a9c01d4e5b6a7"


def test_E6_a_served_image_on_a_slurm_node_mounts_its_endpoint_file(tmp_path: Path) -> None:
    # Before: the node's launch named no job directory and its container mounted only the checkpoint, so
    # the server wrote its URL inside the container and `tuxai show` had no endpoint.
    job_dir = tmp_path / "jobs" / "8"
    job_dir.mkdir(parents=True)
    model = str(tmp_path / "model.onnx")
    spec = JobSpec(("tuxai", "serve"), image=IMAGE, serve_model=model)
    launch = Launch(8, 1, spec.command, {}, "", str(job_dir / "output.log"), job_dir=str(job_dir))
    launch = Launch(**{**launch.__dict__, "container": Container(IMAGE, 1 << 30, model=model)})
    run_dir = Path(SlurmExecutor(lambda _: spec).prepare(launch).removeprefix("slurm:"))
    node_dir, node = node_run(run_dir, {"SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "n1"})
    write_launch(node_dir, node)
    box = read_launch(node_dir).container
    assert box is not None
    endpoint, checkpoint = str(job_dir / "endpoint"), str(job_dir / "checkpoint")
    assert box.mounts == (checkpoint, endpoint)
    argv = run_argv(read_launch(node_dir), box, node_dir, Host(Limits((1024, 1024), (64, 64)), rootless=True))
    assert f"--volume={endpoint}:{endpoint}" in argv


def _one_node(**change: Any) -> dict[str, Any]:
    path = REPO / "tests" / "fixtures" / "k8s" / "one-node.job.yaml"
    return {**load_job_file(path.read_text(), str(path)), **change}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"serve_model": "/srv/models/resnet"}, "serve_model has no Kubernetes form"),
        ({"env_lock": "torch==2.4.0\n"}, "env/env_lock is built by tuxai on its own nodes"),
        ({"env": "requirements.txt"}, "env/env_lock is built by tuxai on its own nodes"),
    ],
)
def test_E6_a_manifest_refuses_what_a_pod_would_silently_lose(change: dict[str, Any], words: str) -> None:
    # Before: the manifest was written without the served model or the job's environment, in silence.
    with pytest.raises(UsageError) as caught:
        manifests.export_manifest(_one_node(**change), "job.yaml")
    assert words in caught.value.message and "\n" not in str(caught.value)


def test_E11c_a_malformed_cdi_spec_is_named_where_a_gpu_has_no_cdi_name(tmp_path: Path) -> None:
    # Before: a Slurm node dropped a spec it could not parse and said only "no CDI device … generate".
    (tmp_path / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: [{name: '0'}, {nam")
    (tmp_path / "other.json").write_text('{"kind": "tuxai.dev/gpu", "devices": [{"name": "7"}]}')
    specs, problems = read_cdi_specs([str(tmp_path)])
    assert [s.path for s in specs] == [str(tmp_path / "other.json")]
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'nvidia.yaml'}: not JSON or YAML")
    assert "\n" not in problems[0]
    box, _ = node_container({"image": IMAGE}, {"SLURM_STEP_GPUS": "0"}, specs, "", problems=problems)
    assert f"unreadable: {tmp_path / 'nvidia.yaml'}: not JSON or YAML" in box.error and "\n" not in box.error
    with pytest.raises(UsageError) as caught:  # the one-box path's error (daemon.containers) names it alike
        cdi_names(Allocation("n", (GpuShare(0, None),)), specs, problems)
    assert str(tmp_path / "nvidia.yaml") in caught.value.message and caught.value.hint.startswith("fix or remove")
    assert cdi_names(Allocation("n", (GpuShare(7, None),)), [CdiSpec("tuxai.dev/gpu", ("7",))], problems)


def test_E11d_one_name_for_podmans_local_images() -> None:
    # Before: k8s.manifests and daemon.image_store each defined LOCAL = "localhost/".
    assert model_container.LOCAL == "localhost/"
    assert manifests.LOCAL is model_container.LOCAL and image_store.LOCAL is model_container.LOCAL
    assert "LOCAL =" not in Path(manifests.__file__).read_text()
    assert "LOCAL =" not in Path(image_store.__file__).read_text()
