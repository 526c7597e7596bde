"""Manifests checked offline: core types against Kubernetes' own schemas (``kubernetes-validate``,
strict: an unknown field is an error), a JobSet against its CRD's fields, each replicated job's
template (a JobTemplateSpec) as the batch/v1 Job it becomes.

``validate(manifest)`` → None, or ``UsageError`` naming the path and the problem. Needs the
``kubernetes-validate`` package (in the ``dev`` extra).
"""

from __future__ import annotations

import importlib
from typing import Any

from tuxai.errors import UsageError

KUBERNETES_VERSION = "1.31"  # podFailurePolicy is GA from 1.31

_OBJECT_META = {"type": "object"}  # checked with the Job that each template becomes
# JobSet v1alpha2's fields (jobset.x-k8s.io: JobSetSpec, ReplicatedJob, Network, policies).
JOBSET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "jobset.x-k8s.io/v1alpha2"},
        "kind": {"const": "JobSet"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["replicatedJobs"],
            "additionalProperties": False,
            "properties": {
                "replicatedJobs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "template"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "groupName": {"type": "string"},
                            "replicas": {"type": "integer", "minimum": 1},
                            "dependsOn": {"type": "array"},
                            "template": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"metadata": _OBJECT_META, "spec": {"type": "object"}},
                            },
                        },
                    },
                },
                "network": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "enableDNSHostnames": {"type": "boolean"},
                        "subdomain": {"type": "string"},
                        "publishNotReadyAddresses": {"type": "boolean"},
                    },
                },
                "successPolicy": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "operator": {"enum": ["All", "Any"]},
                        "targetReplicatedJobs": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "failurePolicy": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "maxRestarts": {"type": "integer", "minimum": 0},
                        "restartStrategy": {"enum": ["Recreate", "BlockingRecreate"]},
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["action"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "action": {
                                        "enum": ["FailJobSet", "RestartJobSet", "RestartJobSetAndIgnoreMaxRestarts"]
                                    },
                                    "onJobFailureReasons": {"type": "array", "items": {"type": "string"}},
                                    "targetReplicatedJobs": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
                "startupPolicy": {"type": "object"},
                "suspend": {"type": "boolean"},
                "coordinator": {"type": "object"},
                "managedBy": {"type": "string"},
                "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0},
            },
        },
    },
}


def validate(manifest: dict[str, Any]) -> None:
    """Check one manifest offline (a Job, or a JobSet and each of its job templates).

    Raises:
        UsageError: the manifest does not validate (path and reason), or kubernetes-validate is missing.
    """
    if manifest.get("kind") == "JobSet":
        _jobset(manifest)
        return
    _core(manifest, str(manifest.get("kind")))


def _checker(module: str) -> Any:
    """``kubernetes_validate`` or ``jsonschema``, imported when a manifest is checked (typed as Any: no stubs)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            "validating manifests needs kubernetes-validate", hint="pip install kubernetes-validate"
        ) from None


def _core(manifest: dict[str, Any], where: str) -> None:
    checker = _checker("kubernetes_validate")
    try:
        checker.validate(manifest, KUBERNETES_VERSION, strict=True)
    except checker.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)  # a jsonschema error: where and what
        raise UsageError(f"{where}: {path or '(top)'}: {exc.message}") from None


def _jobset(manifest: dict[str, Any]) -> None:
    validator = _checker("jsonschema").Draft202012Validator(JOBSET_SCHEMA)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: [str(p) for p in e.path])
    if errors:
        path = ".".join(str(p) for p in errors[0].path)
        raise UsageError(f"JobSet: {path or '(top)'}: {errors[0].message}")
    for replicated in manifest["spec"]["replicatedJobs"]:
        template = replicated["template"]
        name = f"{manifest['metadata']['name']}-{replicated['name']}-0"  # the child Job's name
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, **template.get("metadata", {})},
            "spec": template.get("spec", {}),
        }
        _core(job, f"JobSet replicatedJobs[{replicated['name']}].template")
