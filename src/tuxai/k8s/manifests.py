"""A job file as Kubernetes manifests: a batch/v1 Job for one node, a JobSet for a gang of nodes.

``export_manifest(data, origin)`` → one manifest (a mapping; ``to_yaml`` writes it). The job
file is read by the same validator as ``tuxai submit --file`` (``model.jobfile``), plus two
fields only an export uses:

    image: ghcr.io/team/train:1.4      # required: the container image
    queue: team-a                      # Kueue's LocalQueue (kueue.x-k8s.io/queue-name)

What maps to what: GPUs → ``nvidia.com/gpu`` (a MIG profile → ``nvidia.com/mig-1g.10gb``),
``cpus``/``mem`` → requests = limits, ``grace`` → ``terminationGracePeriodSeconds``, ``time``
→ ``activeDeadlineSeconds``, ``retries`` → ``backoffLimit`` (a JobSet's ``maxRestarts``: the
gang restarts as one), the checkpoint exit code 99 and a preemption → a pod failure not counted
(``podFailurePolicy: Ignore``), ``/dev/shm`` → an emptyDir in memory (``shm_size`` its
``sizeLimit``), a gang's variables from
the launch contract (``model.launch``) with MASTER_ADDR the JobSet's DNS name of node 0 and
NODE_RANK its job index. ``image`` is read as ``tuxai submit`` reads it (``model.container.check_image``);
a ``localhost/`` image (``tuxai image build``'s) is refused: no cluster can pull it until it is
pushed to a registry and named by its digest. Pure.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from tuxai.errors import UsageError
from tuxai.model.container import LOCAL
from tuxai.model.gang import Launcher, torchrun_target
from tuxai.model.job import REQUEUE_EXIT_CODE, JobSpec
from tuxai.model.jobfile import spec_from_dict
from tuxai.model.launch import gang_of, node_environment

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_INDEX = "jobset.sigs.k8s.io/job-index"  # the annotation JobSet puts on each child job's pods
MASTER_PORT = 29500  # a pod has its own network: torchrun's usual port is free
CONTAINER = "job"
REPLICATED_JOB = "node"
EXPORT_FIELDS = ("queue",)
_RANKED = ("NODE_RANK", "PET_NODE_RANK", "TUXAI_NODE_RANK")  # one value per pod: its job index
_HINT = "see docs/jobs.md, section Kubernetes manifests"


def export_manifest(data: dict[str, Any], origin: str) -> dict[str, Any]:
    """A job file's mapping → a batch/v1 Job (one node) or a JobSet (``nodes`` ≥ 2).

    Raises:
        UsageError: no ``image``, a bad field, or a request Kubernetes cannot express (a GPU slice,
            ``gpu_type``), each in one line naming the field.
    """
    image = data.get("image")
    if not isinstance(image, str) or not image.strip():
        raise UsageError(f"{origin}: image is required to export (the container to run), got {image!r}", hint=_HINT)
    queue = data.get("queue", "")
    if not isinstance(queue, str):
        raise UsageError(f"{origin}: queue must be the name of a Kueue LocalQueue, got {queue!r}", hint=_HINT)
    spec = spec_from_dict({k: v for k, v in data.items() if k not in EXPORT_FIELDS}, origin, slurm_time=True)
    _refuse_what_has_no_form(spec, origin)
    name = manifest_name(spec)
    if spec.nodes > 1:
        return _jobset(spec, name, spec.image, queue)
    return _job(spec, name, spec.image, queue)


def manifest_name(spec: JobSpec) -> str:
    """A DNS-1123 name from the job's name, short enough for JobSet's pod host names.

    >>> manifest_name(JobSpec(command=("python", "Train_BERT.py"), name="BERT large/v2"))
    'bert-large-v2'
    """
    text = re.sub(r"[^a-z0-9-]+", "-", spec.display_name.lower()).strip("-")
    return text[:40].rstrip("-") or "tuxai-job"


def _refuse_what_has_no_form(spec: JobSpec, origin: str) -> None:
    if spec.image.startswith(LOCAL):
        raise UsageError(
            f"{origin}: image {spec.image} is in this host's podman store only (tuxai image build): "
            "a Kubernetes cluster cannot pull it until it is pushed to a registry",
            hint=f"podman push --digestfile digest {spec.image} REGISTRY/NAME:TAG, then image: "
            "REGISTRY/NAME@sha256:<digest> (the digest pins exactly this image)",
        )
    if spec.serve_model:
        raise UsageError(
            f"{origin}: serve_model has no Kubernetes form here (the model is a path on this host, "
            "and no endpoint would come back)",
            hint="put the model in the image and serve it with the image's command",
        )
    if spec.env_lock or spec.env_path:
        raise UsageError(
            f"{origin}: env/env_lock is built by tuxai on its own nodes; a pod runs only what its image carries",
            hint="build the environment into the image: tuxai image build --requirements FILE, then push it",
        )
    if spec.request.shared:
        raise UsageError(
            f"{origin}: a slice of one GPU (gpu_share/gpu_mem) has no Kubernetes resource",
            hint="ask for whole GPUs (gpus: N) or a MIG profile (mig: 1g.10gb)",
        )
    if spec.request.gpu_types:
        raise UsageError(
            f"{origin}: gpu_type has no portable Kubernetes form (node labels differ per cluster)",
            hint="drop gpu_type and pick GPUs with your Kueue queue's resource flavors",
        )


def _labels(name: str, queue: str) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "tuxai"}
    if queue:
        labels[QUEUE_LABEL] = queue
    return labels


def _resources(spec: JobSpec) -> dict[str, dict[str, str]]:
    request = spec.request
    amounts = {"cpu": str(request.cpus)}
    if request.memory_bytes:
        amounts["memory"] = quantity(request.memory_bytes)
    if request.gpus:
        resource = f"nvidia.com/mig-{request.mig_profile}" if request.mig_profile else "nvidia.com/gpu"
        amounts[resource] = str(request.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}  # extended resources need requests = limits


def quantity(count: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides them.

    >>> quantity(32 * 2**30), quantity(1536 * 2**20), quantity(1000)
    ('32Gi', '1536Mi', '1000')
    """
    for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if count % size == 0:
            return f"{count // size}{suffix}"
    return str(count)


def _env(spec: JobSpec, name: str, hosts: list[str]) -> list[dict[str, Any]]:
    variables: dict[str, str] = {"TUXAI_REQUEUE_EXIT_CODE": str(REQUEUE_EXIT_CODE)}
    if spec.launcher is not None:
        gang = gang_of(len(hosts), spec.request.gpus, spec.launcher, spec.procs_per_node)
        variables.update(node_environment(gang, hosts, MASTER_PORT, 0, name, 0))
    variables.update(dict(spec.exports))
    entries: list[dict[str, Any]] = []
    for key, value in variables.items():
        if key in _RANKED and len(hosts) > 1:
            path = f"metadata.annotations['{JOB_INDEX}']"
            entries.append({"name": key, "valueFrom": {"fieldRef": {"fieldPath": path}}})
        else:
            entries.append({"name": key, "value": value})
    return entries


def _command(spec: JobSpec) -> list[str]:
    """The container's command: torchrun (its options from PET_*, one value per pod) or the job's own."""
    if spec.launcher is Launcher.TORCHRUN:
        target = torchrun_target(spec.command)
        return [target.program, *target.args]
    return list(spec.command)


def _job_spec(spec: JobSpec, name: str, image: str, hosts: list[str], gang: bool) -> dict[str, Any]:
    """A batch/v1 JobSpec for one node. In a gang, a pod failure fails its job at once (the JobSet
    restarts every node); alone, the job's retries are its ``backoffLimit``."""
    # Exit 99 (the checkpoint contract) and a preemption run the job again without using a retry:
    # alone, the pod is replaced (Ignore); in a gang, the whole gang restarts (FailJob, then the
    # JobSet's rule for PodFailurePolicy failures).
    again = "FailJob" if gang else "Ignore"
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "command": _command(spec),
        "env": _env(spec, name, hosts),
        "resources": _resources(spec),
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if spec.workdir:
        container["workingDir"] = spec.workdir
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": math.ceil(spec.grace_s),
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": _shm(spec)}],
    }
    job: dict[str, Any] = {
        "backoffLimit": 0 if gang else spec.retries,
        "completions": 1,
        "parallelism": 1,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": again,
                    "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [REQUEUE_EXIT_CODE]},
                },
                {"action": again, "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},  # preempted
            ]
        },
        "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": pod},
    }
    if spec.time_limit_s is not None:
        job["activeDeadlineSeconds"] = math.ceil(spec.time_limit_s)
    return job


def _shm(spec: JobSpec) -> dict[str, str]:
    """/dev/shm: memory, capped at the job file's ``shm_size`` when it gives one."""
    return {"medium": "Memory", **({"sizeLimit": quantity(spec.shm_bytes)} if spec.shm_bytes else {})}


def _job(spec: JobSpec, name: str, image: str, queue: str) -> dict[str, Any]:
    hosts = ["127.0.0.1"]  # one pod: its ranks meet on loopback
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": _labels(name, queue)},
        "spec": {"suspend": True, **_job_spec(spec, name, image, hosts, gang=False)},  # Kueue admits it
    }


def _jobset(spec: JobSpec, name: str, image: str, queue: str) -> dict[str, Any]:
    # JobSet names each pod <jobset>-<replicated job>-<job index>-<pod index> in a headless
    # service named after the JobSet: node 0 is the master.
    hosts = [f"{name}-{REPLICATED_JOB}-{i}-0.{name}" for i in range(spec.nodes)]
    template = _job_spec(spec, name, image, hosts, gang=True)
    requeue = {"name": "requeue", "action": "RestartJobSetAndIgnoreMaxRestarts"}
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": name, "labels": _labels(name, queue)},
        "spec": {
            "suspend": True,
            "network": {"enableDNSHostnames": True, "subdomain": name},
            "failurePolicy": {  # the whole gang restarts as one: on a retry, or for exit 99 or a preemption
                "maxRestarts": spec.retries,
                "rules": [{**requeue, "onJobFailureReasons": ["PodFailurePolicy"]}],
            },
            "successPolicy": {"operator": "All"},
            "replicatedJobs": [
                {
                    "name": REPLICATED_JOB,
                    "replicas": spec.nodes,
                    "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": template},
                }
            ],
        },
    }


def to_yaml(manifest: dict[str, Any]) -> str:
    """A manifest as YAML, keys in the order written (apiVersion, kind, metadata, spec)."""
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, allow_unicode=True)
