"""A job spec in Slurm's terms, and Slurm's answers in tuxai's (model.slurm: pure)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tuxai.daemon.slurm import slurm_placement
from tuxai.errors import UsageError
from tuxai.model.gang import Launcher
from tuxai.model.job import JobSpec, JobState
from tuxai.model.jobfile import spec_from_dict, spec_to_dict
from tuxai.model.resources import Allocation, Request
from tuxai.model.slurm import (
    batch_script,
    expand_hostlist,
    gres_indices,
    job_state,
    parse_sbatch_id,
    parse_squeue_json,
    pending_words,
    rank_places,
    refusal_line,
    sbatch_args,
)


def _args(spec: JobSpec, **kw: bool) -> list[str]:
    return sbatch_args(spec, "tuxai-7.1", "/j/7/run-1/slurm.out", "/work", **kw)


def test_a_gang_becomes_nodes_gpus_cpus_mem_time_signal_requeue_output() -> None:
    spec = JobSpec(
        ("python", "ddp.py"),
        request=Request(gpus=2, cpus=4, memory_bytes=3 * 2**30 + 1),
        time_limit_s=5400,
        grace_s=45.5,
        nodes=2,
        launcher=Launcher.TORCHRUN,
    )
    assert _args(spec) == [
        "--parsable",
        "--job-name=tuxai-7.1",
        "--nodes=2",
        "--ntasks-per-node=1",
        "--cpus-per-task=4",
        "--gpus-per-node=2",
        "--mem=3073M",
        "--time=01:30:00",
        "--signal=B:TERM@46",
        "--requeue",
        "--output=/j/7/run-1/slurm.out",
        "--open-mode=append",
        "--chdir=/work",
        "--export=NONE",
    ]


def test_gres_form_gpu_type_mig_account_partition_qos_no_requeue() -> None:
    spec = JobSpec(("x",), request=Request(gpus=1, gpu_types=("A100",)), requeue=False)
    spec = spec_from_dict({**spec_to_dict(spec), "account": "physics", "partition": "gpu", "qos": "high"})
    args = _args(spec, gres=True)
    assert "--gres=gpu:a100:1" in args and "--no-requeue" in args
    assert args[-3:] == ["--account=physics", "--partition=gpu", "--qos=high"]
    assert "--gpus-per-node=1g.10gb:2" in _args(JobSpec(("x",), request=Request(gpus=2, mig_profile="1g.10gb")))
    assert not any(a.startswith(("--gres", "--gpus")) for a in _args(JobSpec(("x",))))


def test_account_partition_qos_are_job_file_fields_checked_and_kept() -> None:
    spec = spec_from_dict({"command": "x", "partition": "gpu-a100", "qos": "normal"}, "job.yaml")
    assert (spec.partition, spec.qos, spec.account) == ("gpu-a100", "normal", "")
    assert spec_from_dict(spec_to_dict(spec)) == spec
    with pytest.raises(UsageError, match=r"job\.yaml: account must be a Slurm name"):
        spec_from_dict({"command": "x", "account": "--uid=0"}, "job.yaml")


def test_what_slurm_cannot_be_asked_is_one_line() -> None:
    with pytest.raises(UsageError, match="share of a GPU"):
        _args(JobSpec(("x",), request=Request(gpus=1, gpu_milli=250)))
    with pytest.raises(UsageError, match="one GPU type"):
        _args(JobSpec(("x",), request=Request(gpus=1, gpu_types=("A100", "H100"))))


def test_batch_script_runs_the_node_runner_once_per_node_and_passes_sigterm_to_its_tasks() -> None:
    script = batch_script("/opt/my venv/bin/python", "/h/jobs/7/run-1", (7, 1), nodes=2)
    assert script.startswith("#!/bin/sh\n")
    lines = script.splitlines()
    assert lines[2] == "trap 'scancel --signal=TERM \"$SLURM_JOB_ID.0\"' TERM"
    assert lines[3] == (
        "srun --kill-on-bad-exit=1 --ntasks-per-node=1 --export=ALL "
        "'/opt/my venv/bin/python' -m tuxai.executor.slurm_node /h/jobs/7/run-1 &"
    )
    assert subprocess.run(["sh", "-n"], input=script, text=True, check=False).returncode == 0  # valid sh


def test_one_node_needs_no_step_the_batch_shell_becomes_the_node_runner() -> None:
    script = batch_script("/venv/bin/python", "/h/jobs/7/run-1", (7, 1))
    assert script.splitlines()[2:] == ["exec /venv/bin/python -m tuxai.executor.slurm_node /h/jobs/7/run-1"]


def test_sbatch_id_and_host_lists() -> None:
    assert parse_sbatch_id("17\n") == 17 and parse_sbatch_id("18;cluster\n") == 18
    with pytest.raises(ValueError):
        parse_sbatch_id("sbatch: error: nope")
    assert expand_hostlist("n[1-2]") == ["n1", "n2"]
    assert expand_hostlist("a[01-02]-ib,b7") == ["a01-ib", "a02-ib", "b7"]
    assert expand_hostlist("") == []


def test_squeue_json_of_slurm_22_05_and_23_02() -> None:
    # 22.05 (recorded on this machine): job_state a string, exit_code the wait status (768: exit 3)
    old = {
        "jobs": [
            {"job_id": 6, "job_state": "FAILED", "state_reason": "NonZeroExitCode", "exit_code": 768, "name": "t-6"}
        ]
    }
    new = {
        "jobs": [
            {"job_id": 9, "job_state": ["PENDING"], "state_reason": "Priority", "exit_code": {"return_code": 0}},
            {"job_id": 10, "job_state": ["COMPLETED"], "exit_code": {"return_code": {"number": 2, "set": True}}},
        ]
    }
    six = parse_squeue_json(json.dumps(old))[6]
    assert (six.state, six.exit_code, six.signal, six.name) == ("FAILED", 3, None, "t-6")
    jobs = parse_squeue_json(json.dumps(new))
    assert (jobs[9].state, jobs[9].reason, jobs[10].exit_code) == ("PENDING", "Priority", 2)
    assert parse_squeue_json('{"jobs": [{"job_id": 1, "job_state": "CANCELLED", "exit_code": 9}]}')[1].signal == 9
    with pytest.raises(ValueError):
        parse_squeue_json('{"errors": []}')


def test_states_and_pending_reasons_in_words() -> None:
    assert [job_state(s) for s in ("PENDING", "RUNNING", "COMPLETED", "CANCELLED", "TIMEOUT", "NODE_FAIL")] == [
        JobState.PENDING,
        JobState.RUNNING,
        JobState.SUCCEEDED,
        JobState.CANCELLED,
        JobState.TIMEOUT,
        JobState.FAILED,
    ]
    assert pending_words("Resources") == "the nodes, GPUs or memory it asks for are in use (Slurm: Resources)"
    assert pending_words("Priority").startswith("jobs of higher priority are ahead of it")
    assert "one user" in pending_words("QOSMaxGRESPerUser")
    assert refusal_line("sbatch: error: Batch job submission failed: Invalid account\n").endswith("Invalid account")


# squeue --json of Slurm 22.05 on the tier's cluster (two nodes, gpu:fake:2 each), a 2-node job of
# --gpus-per-node=2 that runs and a one-GPU job behind it: the fields the daemon reads, as printed.
SQUEUE_2205 = {
    "jobs": [
        {
            "job_id": 1,
            "job_state": "RUNNING",
            "state_reason": "None",
            "nodes": "n[1-2]",
            "gres_detail": ["gpu:fake:2(IDX:0-1)", "gpu:fake:2(IDX:0-1)"],
            "start_time": 1795797132,
            "submit_time": 1795797129,
            "end_time": 0,
        },
        {
            "job_id": 2,
            "job_state": "PENDING",
            "state_reason": "Resources",
            "nodes": "",
            "gres_detail": [],
            "start_time": 0,
            "submit_time": 1795797129,
        },
    ]
}


def test_G2_squeue_json_gives_each_node_and_the_gpus_slurm_chose_there_in_rank_order() -> None:
    jobs = parse_squeue_json(json.dumps(SQUEUE_2205))
    running, queued = jobs[1], jobs[2]
    assert (running.start_time, running.placement) == (1795797132.0, (("n1", (0, 1)), ("n2", (0, 1))))
    assert (queued.start_time, queued.placement) == (None, ())  # 0: not started
    assert rank_places(slurm_placement(running)) == ("n1:0,1", "n2:0,1")
    assert slurm_placement(running).gpus == ()  # none of the daemon's own machine's GPUs (telemetry, `tuxai gpus`)
    assert rank_places(Allocation("n1", more=(Allocation("n2"),))) == ()  # a Ray gang: its own columns
    assert gres_indices("gpu:a100:3(IDX:0,2-3)") == (0, 2, 3) and gres_indices("gpu:1(IDX:N/A)") == ()
