"""The wire types: one JSON form each, read back strictly; errors cross as the same class with the same fields."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tuxai import errors
from tuxai.api.views import PUBLIC
from tuxai.errors import DaemonError, TuxaiError
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict
from tuxai.model.wire import (
    ERRORS,
    EnergyTotals,
    ErrorBody,
    Health,
    Job,
    JobDetail,
    JobEvent,
    PublicJob,
    error_body,
    error_from_body,
    from_json,
    job_from_json,
    status_of,
    to_json,
)
from tuxai.model.wire_gpus import GpuHolder, GpuView, LiveGpu, LiveProcess, LiveUsage, LiveView

SPEC = spec_from_dict(
    {
        "command": "python train.py --epochs 3",
        "name": "train",
        "gpu_share": 0.25,
        "gpu_type": "A100|H100",
        "mem": "32GiB",
        "time": "4h",
        "retries": 2,
        "export": ["A=1", "B=two"],
        "workdir": "/tmp",
        "env": "/opt/venv",
        "preemptible": True,
    }
)
PUBLIC_JOB = PublicJob(
    **{"id": 7, "name": "train", "user": "alice", "state": JobState.RUNNING, "reason": "", "exit_code": None},
    **{"signal": None, "held": False, "priority": 0, "flags": ("idle",), "gpus": ("GPU-1", None)},
    **{"gpu_indices": (0, 1), "cpus": (2, 3), "node": "local", "submitted_at": 1.5, "started_at": 2.0},
    **{"ended_at": None, "waited_s": 0.5, "ran_s": 10},  # an int where a float is declared: kept as sent
)
OWN = {
    **{"log_path": "/home/jobs/7/output.log", "command": SPEC.command, "attempt": 1, "failures": 0, "requeues": 0},
    **{"wall_s": None, "cpu_s": 3.25, "max_rss_bytes": 2**30, "oom_killed": False, "endpoint": None, "spec": SPEC},
}
JOB = Job(**{f.name: getattr(PUBLIC_JOB, f.name) for f in dataclasses.fields(PublicJob)}, **OWN)
ENERGY = EnergyTotals(1e-6, 0.0, 1e-6, 4.75e-7, 0.001, 475.0, 1.2, {"gpu0": "simulated", "cpu": "rapl"})
EVENTS = (JobEvent(1.5, None, JobState.PENDING, "submitted"), JobEvent(2.0, JobState.PENDING, JobState.RUNNING, ""))
DETAIL = JobDetail(**{f.name: getattr(JOB, f.name) for f in dataclasses.fields(Job)}, events=EVENTS, energy=ENERGY)
HOLDER = GpuHolder(7, "alice", "train", 0.25, None)
SAMPLE = LiveGpu(
    **{"index": 0, "uuid": "GPU-1", "at": 3.0, "util_pct": 50.0, "memory_used_bytes": 1, "memory_total_bytes": 2},
    **{"power_w": 10.0, "power_limit_w": 72.0, "energy_j": None, "temperature_c": 35.2, "sm_clock_mhz": None},
    **{"memory_clock_mhz": None, "throttle_reasons": 0, "ecc_uncorrected": None, "name": "L4", "holders": (HOLDER,)},
    processes=(LiveProcess(9, None, 1.5),),
)
LIVE = LiveView(
    "simulated", "estimate", "no RAPL", (SAMPLE,), {7: LiveUsage(7, 3.0, 1.25, 4096, 0, 0, (9,), 12)}, {7: ("idle",)}
)
HEALTH = Health(
    **{"ok": True, "pid": 1, "version": "0.1.0", "home": "/h", "inventory": "simulated:x", "gpus": 2, "cpus": 2},
    **{"cgroups": 1, "cgroups_path": "cgroupfs v1", "cgroups_problem": "", "ticks": 4, "last_tick_age_s": None},
    **{"tick_errors": 0, "metrics": "", "sampler": "none", "cpu_energy": "none", "cpu_energy_problem": ""},
    **{"telemetry_steps": 0, "telemetry_cpu_s": 0.0, "telemetry_errors": 0},
)
GPU = GpuView(0, None, "L4", None, (), (HOLDER,))
ERROR = ErrorBody("JobNotFound", "no job 7", "see ls", job_id=7)


@pytest.mark.parametrize(
    "value",
    [PUBLIC_JOB, JOB, DETAIL, dataclasses.replace(DETAIL, energy=None), GPU, LIVE, HEALTH, ERROR],
)
def test_every_wire_type_reads_back_what_it_writes(value: object) -> None:
    data = json.loads(json.dumps(to_json(value)))
    assert from_json(type(value), data) == value
    assert to_json(from_json(type(value), data)) == data  # the same JSON again: what `--json` prints


def test_a_job_is_read_as_what_its_keys_say_and_its_spec_as_the_job_file_fields() -> None:
    for job in (PUBLIC_JOB, JOB, DETAIL):
        read = job_from_json(json.loads(json.dumps(to_json(job))))
        assert type(read) is type(job) and read == job
    data = to_json(JOB)
    assert isinstance(data, dict) and data["spec"]["export"] == {"A": "1", "B": "two"} and data["spec"]["time"] == 14400
    assert data["state"] == "running" and data["gpus"] == ["GPU-1", None]
    assert set(to_json(PUBLIC_JOB)) == PUBLIC  # the one rule's fields are PublicJob's


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"state": "sleeping"}, "job.state should be one of pending"),
        ({"id": True}, "job.id should be a int"),
        ({"gpu_indices": ["0"]}, "job.gpu_indices[0] should be a int"),
        ({"cpus": None}, "job.cpus should be a list"),
        ({"spec": {"command": []}}, "job.spec should be a job spec (job.spec: command must be a non-empty command"),
    ],
)
def test_an_answer_not_in_the_form_is_a_daemon_error_naming_the_field(change: dict[str, object], named: str) -> None:
    data = {**to_json(JOB), **change}
    with pytest.raises(DaemonError, match="not readable") as refused:
        job_from_json(data)
    assert named in refused.value.message


def test_a_missing_field_is_named() -> None:
    data = to_json(HEALTH)
    assert isinstance(data, dict)
    del data["ticks"]
    with pytest.raises(DaemonError, match="health should be an object with ticks"):
        from_json(Health, data, "health")


SAMPLES: dict[type[TuxaiError], TuxaiError] = {
    errors.ToolOutputError: errors.ToolOutputError("nvidia-smi -q -x", "truncated"),
    errors.InvalidTransition: errors.InvalidTransition("7", "succeeded", "running"),
    errors.JobNotFound: errors.JobNotFound(7),
}
MODEL_SERVER_ONLY = {"ModelNotFound", "ModelNotReady"}  # answered in KServe's shape, never by the daemon's API


def test_every_error_crosses_as_its_class_with_its_message_hint_fields_and_status() -> None:
    crossed = 0
    for name, kind in ERRORS.items():
        if kind.__init__ is TuxaiError.__init__:
            error = kind("something 'bad' happened", hint="do this")
        elif kind in SAMPLES:
            error = SAMPLES[kind]
        else:
            assert name in MODEL_SERVER_ONLY, f"{name} has fields of its own: give ErrorBody them, and a sample here"
            continue
        body = from_json(ErrorBody, json.loads(json.dumps(to_json(error_body(error)))))
        back = error_from_body(body, status_of(error))
        assert type(back) is kind and (back.message, back.hint, str(back)) == (error.message, error.hint, str(error))
        assert back.status == status_of(error) and error.status is None
        assert {k: v for k, v in vars(back).items() if k != "status"} == vars(error)
        crossed += 1
    assert crossed >= 11


def test_status_follows_the_class_tree_and_an_unknown_name_reads_by_status() -> None:
    assert status_of(errors.JobNotFound(1)) == 404 and status_of(errors.ConfigError("x")) == 500
    assert to_json(error_body(errors.UsageError("m", "h"))) == {"error": "UsageError", "message": "m", "hint": "h"}
    for status, kind in ((401, errors.PermissionDenied), (413, errors.UsageError), (502, errors.DaemonError)):
        error = error_from_body(ErrorBody("NotOurs", "proxy page", ""), status)
        assert type(error) is kind and error.status == status and error.message == "proxy page"
