"""``tuxai export k8s``: a golden manifest per shape (one node, a MIG slice, a 2-node gang), each
validated offline (kubernetes-validate, strict; the JobSet against its CRD's fields and its job
template as a batch/v1 Job), and the refusals in one line.

To accept a deliberate change of output: ``TUXAI_UPDATE_GOLDEN=1 pytest tests/unit/test_k8s_export.py``.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tuxai.errors import UsageError
from tuxai.k8s.manifests import QUEUE_LABEL, export_manifest, to_yaml
from tuxai.k8s.validate import validate
from tuxai.model.jobfile import load_job_file

GOLDEN = REPO / "tests" / "fixtures" / "k8s"
SHAPES = ("one-node", "mig-slice", "two-node-gang")


def exported(shape: str) -> dict[str, Any]:
    path = GOLDEN / f"{shape}.job.yaml"
    return export_manifest(load_job_file(path.read_text(), str(path)), str(path))


@pytest.mark.parametrize("shape", SHAPES)
def test_golden_manifest_per_shape_validates_offline(shape: str) -> None:
    manifest = exported(shape)
    validate(manifest)
    golden = GOLDEN / f"{shape}.expected.yaml"
    if os.environ.get("TUXAI_UPDATE_GOLDEN"):
        golden.write_text(to_yaml(manifest))
    assert to_yaml(manifest) == golden.read_text()


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    job = spec["replicatedJobs"][0]["template"]["spec"] if manifest["kind"] == "JobSet" else spec
    container: dict[str, Any] = job["template"]["spec"]["containers"][0]
    return container


def test_one_node_job_carries_the_spec() -> None:
    manifest = exported("one-node")
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "Job")
    assert manifest["metadata"]["labels"][QUEUE_LABEL] == "team-a" and manifest["spec"]["suspend"] is True
    spec, container = manifest["spec"], _container(manifest)
    assert spec["backoffLimit"] == 3 and spec["activeDeadlineSeconds"] == 4 * 3600
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 120 and pod["restartPolicy"] == "Never"
    assert pod["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    assert container["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert container["command"] == ["python", "train.py", "--epochs", "3"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WANDB_MODE"] == "offline" and "MASTER_ADDR" not in env  # not a gang


def test_mig_slice_asks_for_the_mig_resource() -> None:
    limits = _container(exported("mig-slice"))["resources"]["limits"]
    assert limits == {"cpu": "2", "memory": "8Gi", "nvidia.com/mig-1g.10gb": "1"}


def test_two_node_gang_is_a_jobset_with_the_launch_contract() -> None:
    manifest = exported("two-node-gang")
    assert (manifest["apiVersion"], manifest["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    spec = manifest["spec"]
    (replicated,) = spec["replicatedJobs"]
    assert replicated["replicas"] == 2 and replicated["template"]["spec"]["backoffLimit"] == 0
    assert (
        spec["network"] == {"enableDNSHostnames": True, "subdomain": "ddp"}
        and spec["failurePolicy"]["maxRestarts"] == 1
    )
    container = _container(manifest)
    assert container["command"] == ["torchrun", "ddp.py", "--steps", "10"]  # its options come from PET_*
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MASTER_ADDR"] == env["PET_MASTER_ADDR"] == "ddp-node-0-0.ddp"  # node 0's DNS name in the JobSet
    assert (env["WORLD_SIZE"], env["PET_NNODES"], env["PET_NPROC_PER_NODE"], env["PET_MAX_RESTARTS"]) == (
        "4",
        "2",
        "2",
        "0",
    )
    ranked = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    index = "metadata.annotations['jobset.sigs.k8s.io/job-index']"
    assert ranked == {"NODE_RANK": index, "PET_NODE_RANK": index, "TUXAI_NODE_RANK": index}


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda m: _container(m).update(bogus=1), "'bogus' was unexpected"),
        (lambda m: _container(m)["resources"]["limits"].update(cpu=[1]), "resources.limits.cpu"),
        (lambda m: m["spec"].update(replicas=2), "JobSet: spec: Additional properties"),
        (lambda m: m["spec"]["failurePolicy"].update(maxRestarts="x"), "failurePolicy.maxRestarts"),
    ],
)
def test_a_broken_jobset_does_not_validate(edit: Any, words: str) -> None:
    manifest = copy.deepcopy(exported("two-node-gang"))
    edit(manifest)
    with pytest.raises(UsageError) as caught:
        validate(manifest)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"image": None}, "image is required to export"),
        (
            {"gpu_share": 0.5, "gpus": 1, "mig": None},
            "a slice of one GPU (gpu_share/gpu_mem) has no Kubernetes resource",
        ),
        ({"gpu_type": "A100"}, "gpu_type has no portable Kubernetes form"),
        ({"queue": 3}, "queue must be the name of a Kueue LocalQueue"),
        ({"nodes": 0}, "nodes must be an integer between 1"),
    ],
)
def test_what_kubernetes_cannot_express_is_refused(change: dict[str, Any], words: str) -> None:
    path = GOLDEN / "mig-slice.job.yaml"
    data = {**load_job_file(path.read_text(), str(path)), **change}
    with pytest.raises(UsageError) as caught:
        export_manifest({k: v for k, v in data.items() if v is not None}, "job.yaml")
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_writes_the_manifest_and_refuses_in_one_line(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "tuxai", "export", "k8s", str(GOLDEN / "two-node-gang.job.yaml"), "-o", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"JobSet ddp → {tmp_path / 'ddp.yaml'}" and done.stderr == ""
    assert yaml.safe_load((tmp_path / "ddp.yaml").read_text()) == exported("two-node-gang")
    refused = subprocess.run(
        [sys.executable, "-m", "tuxai", "export", "k8s", str(REPO / "examples" / "jobs" / "ddp.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert "image is required to export" in line


def _one_node(**change: Any) -> dict[str, Any]:
    path = GOLDEN / "one-node.job.yaml"
    return export_manifest({**load_job_file(path.read_text(), str(path)), **change}, "job.yaml")


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("oci-archive:/root/secret.tar", "names a transport (oci-archive:)"),
        ("--privileged", "is not an image reference"),
        ("Train:1", "is not an image reference"),
    ],
)
def test_I19_2_the_image_is_read_as_submit_reads_it(image: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        _one_node(image=image)
    assert words in caught.value.message and "\n" not in str(caught.value)


def test_I19_2_a_pinned_reference_and_shm_size_reach_the_pod() -> None:
    pinned = "ghcr.io/example/train@sha256:" + "0123456789abcdef" * 4
    manifest = _one_node(image=pinned, shm_size="16GiB")
    assert _container(manifest)["image"] == pinned
    assert manifest["spec"]["template"]["spec"]["volumes"] == [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}
    ]
    validate(manifest)


def test_I19_2_an_image_tuxai_built_here_must_be_pushed_first_with_its_digest() -> None:
    with pytest.raises(UsageError) as caught:
        _one_node(image="localhost/tuxai/train:3f2a9c01d4e5b6a7")
    assert caught.value.message == (
        "job.yaml: image localhost/tuxai/train:3f2a9c01d4e5b6a7 is in this host's podman store only (tuxai image "
        "build): a Kubernetes cluster cannot pull it until it is pushed to a registry"
    )
    assert "podman push --digestfile" in caught.value.hint and "@sha256:<digest>" in caught.value.hint
