"""Pure parts of jobs: specs from files and flags, the state table, outcomes, job environments, cgroup probes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuxai.daemon.outcome import classify
from tuxai.errors import InvalidTransition, UsageError
from tuxai.executor.cgroups import nvidia_device_rules, plan
from tuxai.executor.environment import JobContext, job_environment, real_cpus
from tuxai.executor.rundir import Status
from tuxai.hardware.cgroups import parse_mountinfo, parse_proc_cgroup
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.gpu import Vendor
from tuxai.model.job import TRANSITIONS, JobRecord, JobSpec, JobState, check_transition, retry_delay_s
from tuxai.model.jobfile import load_job_file, parse_duration, spec_from_dict, spec_to_dict
from tuxai.model.resources import Allocation, GpuShare, Request

# ---- job files ----------------------------------------------------------------------------------


def test_job_file_fields_become_a_spec() -> None:
    text = (
        "name: train\ncommand: python train.py --epochs 3\ngpus: 2\ncpus: 8\nmem: 32GiB\ntime: 4h\ngrace: 2m\n"
        "retries: 3\nretry_backoff: 10s\npriority: 50\npreemptible: true\nexport: {WANDB_MODE: offline}\n"
    )
    spec = spec_from_dict(load_job_file(text, "job.yaml"), "job.yaml")
    assert spec.command == ("python", "train.py", "--epochs", "3")
    assert spec.request == Request(gpus=2, cpus=8, memory_bytes=32 * 2**30)
    assert (spec.time_limit_s, spec.grace_s, spec.retries, spec.retry_backoff_s) == (14400.0, 120.0, 3, 10.0)
    assert spec.priority == 50 and spec.preemptible and spec.exports == (("WANDB_MODE", "offline"),)


def test_shares_and_mig_requests() -> None:
    share = spec_from_dict({"command": ["x"], "gpu_share": 0.25, "gpu_mem": "10GiB"}).request
    assert (share.gpus, share.gpu_milli, share.gpu_mem_bytes, share.shared) == (1, 250, 10 * 2**30, True)
    mig = spec_from_dict({"command": ["x"], "mig": "1g.10gb", "gpus": 2}).request
    assert (mig.gpus, mig.mig_profile) == (2, "1g.10gb")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"command": "x", "gpus": "two"}, "job: gpus must be an integer, got 'two'"),
        ({"command": "x", "gpus": -1}, "gpus must be an integer between 0 and 1024"),
        ({"command": "x", "mem": "lots"}, "mem must be a size such as 512MiB or 32GiB"),
        ({"command": "x", "time": "soon"}, "time must be a duration"),
        ({"command": "x", "time": 0}, "time must be a positive duration"),
        ({"command": "x", "gpu_share": 1.5}, "gpu_share must be a fraction of one GPU"),
        ({"command": "x", "gpu_share": 0.5, "gpus": 2}, "a GPU share is a slice of one GPU, got gpus=2"),
        ({"command": "x", "mig": "big"}, "mig must be a MIG profile such as 1g.10gb"),
        ({"command": "x", "export": {"1BAD": "v"}}, "export: '1BAD' is not a variable name"),
        ({"command": "", "gpus": 1}, "command must be a non-empty command"),
        ({"command": "x", "preemptible": "yes"}, "preemptible must be true or false"),
        ({"command": "x", "gpus": 1, "colour": "red"}, "unknown field colour"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_fields_are_named(data: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        spec_from_dict(data)
    assert message in caught.value.message


def test_bad_yaml_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="is not valid YAML"):
        load_job_file("command: [x\n", "job.yaml")
    with pytest.raises(UsageError, match="must be a mapping"):
        load_job_file("- a\n- b\n", "job.yaml")


DURATIONS = [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("1d", 86400.0), ("1:30:00", 5400.0)]


@pytest.mark.parametrize(("text", "seconds"), [*DURATIONS, ("05:00", 300.0), (42, 42.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")  # what a process can be given


@given(
    st.builds(
        JobSpec,
        command=st.lists(st.text(TEXT, min_size=1, max_size=8), min_size=1, max_size=4).map(tuple),
        name=st.text(TEXT, max_size=10),
        request=st.builds(Request, gpus=st.integers(0, 8), cpus=st.integers(1, 64), memory_bytes=st.integers(0, 2**40)),
        time_limit_s=st.none() | st.floats(1, 1e6),
        grace_s=st.floats(0, 600),
        priority=st.integers(0, 100),
        retries=st.integers(0, 100),
        exports=st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), st.text(TEXT, max_size=8)).map(
            lambda d: tuple(d.items())
        ),
    )
)
def test_spec_round_trips_through_its_stored_form(spec: JobSpec) -> None:
    assert spec_from_dict(spec_to_dict(spec)) == spec


# ---- states and outcomes ------------------------------------------------------------------------


def test_transition_table() -> None:
    check_transition(1, JobState.PENDING, JobState.RUNNING)
    check_transition(1, JobState.RUNNING, JobState.REQUEUED)
    check_transition(1, JobState.REQUEUED, JobState.RUNNING)
    with pytest.raises(InvalidTransition, match="job 7 cannot go from succeeded to running"):
        check_transition(7, JobState.SUCCEEDED, JobState.RUNNING)
    with pytest.raises(InvalidTransition):
        check_transition(7, JobState.PENDING, JobState.SUCCEEDED)
    assert {s for s in JobState if s.terminal} == {
        JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT, JobState.PREEMPTED
    }  # fmt: skip
    assert all(TRANSITIONS[s] for s in (JobState.PENDING, JobState.RUNNING, JobState.REQUEUED))


def _job(**fields: object) -> JobRecord:
    spec = JobSpec(command=("x",), **fields)  # type: ignore[arg-type]
    return JobRecord(id=3, spec=spec, user="ada", uid=1000, gid=1000, state=JobState.RUNNING, submitted_at=0.0)


def _status(**fields: object) -> Status:
    return Status(phase="exited", shim_pid=1, started_at=10.0, ended_at=20.0, **fields)  # type: ignore[arg-type]


def test_outcomes() -> None:
    assert classify(_job(), _status(exit_code=0)).state is JobState.SUCCEEDED
    failed = classify(_job(), _status(exit_code=2))
    assert (failed.state, failed.reason) == (JobState.FAILED, "exit code 2")
    retried = classify(_job(retries=2, retry_backoff_s=4.0), _status(exit_code=2))
    assert retried.state is JobState.REQUEUED and retried.fields["eligible_at"] == 24.0
    assert retried.reason == "exit code 2; retry 1 of 2 after 4 s"
    killed = classify(_job(), _status(signal=11))
    assert killed.reason == "killed by SIGSEGV"
    timeout = classify(_job(time_limit_s=90.0), _status(signal=15, timed_out=True))
    assert (timeout.state, timeout.reason) == (JobState.TIMEOUT, "time limit of 1.5 min reached")
    oom = classify(_job(request=Request(memory_bytes=2**30), retries=3), _status(signal=9, oom_killed=True))
    assert oom.state is JobState.FAILED and oom.reason.startswith("out of memory: killed at the 1.0 GiB memory limit")
    requeue = classify(_job(), _status(exit_code=99))
    assert requeue.state is JobState.REQUEUED and requeue.fields["requeues"] == 1
    cannot = classify(_job(retries=5), _status(exit_code=127, error="cannot start 'nope': [Errno 2] No such file"))
    assert cannot.state is JobState.FAILED and cannot.reason.startswith("cannot start 'nope'")
    lost = classify(_job(), None)
    assert lost.state is JobState.FAILED and "shim died" in lost.reason


def test_stops_the_shim_acted_on_decide_the_outcome() -> None:
    base = _job()
    cancelled = classify(
        JobRecord(**{**base.__dict__, "stop_request": "cancel"}), _status(exit_code=143, stop_reason="cancel")
    )
    assert (cancelled.state, cancelled.reason) == (JobState.CANCELLED, "cancelled")
    preempting = JobRecord(**{**base.__dict__, "stop_request": "preempt", "for_job": 9})
    preempted = classify(preempting, _status(signal=9, stop_reason="preempt"))
    assert (preempted.state, preempted.reason) == (JobState.REQUEUED, "preempted for job 9; requeued")
    no_requeue = JobRecord(**{**_job(requeue=False).__dict__, "stop_request": "preempt"})
    assert classify(no_requeue, _status(exit_code=0, stop_reason="preempt")).state is JobState.PREEMPTED
    # Ended on its own before the stop reached it (the shim never acted on it): its own outcome.
    assert classify(preempting, _status(exit_code=0)).state is JobState.SUCCEEDED
    assert (
        classify(JobRecord(**{**base.__dict__, "stop_request": "cancel"}), _status(exit_code=1)).state
        is JobState.FAILED
    )


def test_a_lost_shims_retry_waits_its_backoff_from_when_it_was_seen() -> None:
    lost = classify(_job(retries=2, retry_backoff_s=4.0), None, now=1000.0)
    assert lost.state is JobState.REQUEUED and lost.fields["eligible_at"] == 1004.0


def test_retry_backoff_doubles_and_is_capped() -> None:
    spec = JobSpec(command=("x",), retry_backoff_s=5.0)
    assert [retry_delay_s(spec, n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert retry_delay_s(spec, 30) == 3600.0


# ---- the job's environment ----------------------------------------------------------------------


def test_whole_gpus_by_uuid_and_threads_by_cpus() -> None:
    allocation = Allocation("n", (GpuShare(0, "GPU-a"), GpuShare(3, "GPU-d")), cpus=(4, 5, 6, 7))
    env = job_environment(
        {"CUDA_VISIBLE_DEVICES": "0,1,2,3", "HOME": "/home/ada"},
        {"OMP_NUM_THREADS": "2"},
        allocation,
        JobContext(12, 2, "/var/lib/tuxai/jobs/12/checkpoint", Vendor.NVIDIA),
    )
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-a,GPU-d" and env["HOME"] == "/home/ada"
    assert env["MKL_NUM_THREADS"] == "4" and env["OMP_NUM_THREADS"] == "2"  # the job's own export wins
    assert (env["TUXAI_JOB_ID"], env["TUXAI_ATTEMPT"], env["TUXAI_REQUEUE_EXIT_CODE"]) == ("12", "2", "99")
    assert env["TUXAI_CHECKPOINT_DIR"] == "/var/lib/tuxai/jobs/12/checkpoint"
    assert "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" not in env


def test_mig_shared_amd_and_cpu_only_jobs() -> None:
    mig = Allocation("n", (GpuShare(0, "GPU-a", mig_uuid="MIG-1"),), cpus=(0,))
    assert job_environment({}, {}, mig, JobContext(1, 1, "/c", Vendor.NVIDIA))["CUDA_VISIBLE_DEVICES"] == "MIG-1"
    shared = Allocation("n", (GpuShare(1, "GPU-b", milli=250, memory_bytes=10 * 2**30),), cpus=(0,))
    env = job_environment({}, {}, shared, JobContext(1, 1, "/c", Vendor.NVIDIA), gpu_memory_total=80 * 2**30)
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "25"
    assert env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=10240M"
    assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.125" and env["TUXAI_GPU_MEMORY_BYTES"] == str(10 * 2**30)
    amd = Allocation("n", (GpuShare(0, "GPU-7a"), GpuShare(1, "GPU-7b")))
    assert job_environment({}, {}, amd, JobContext(1, 1, "/c", Vendor.AMD))["ROCR_VISIBLE_DEVICES"] == "GPU-7a,GPU-7b"
    plain = Allocation("n", cpus=(0,))
    cpu_only = job_environment({"CUDA_VISIBLE_DEVICES": "0"}, {}, plain, JobContext(1, 1, "/c", None))
    assert cpu_only["CUDA_VISIBLE_DEVICES"] == "" and cpu_only["HIP_VISIBLE_DEVICES"] == ""
    venv = job_environment({"PATH": "/usr/bin"}, {}, Allocation("n"), JobContext(1, 1, "/c", None, env_path="/e/x"))
    assert venv["PATH"] == "/e/x/bin:/usr/bin" and venv["VIRTUAL_ENV"] == "/e/x"


def test_cpus_of_a_simulated_inventory_fold_onto_the_real_ones() -> None:
    assert real_cpus((2, 3), (0, 1, 2, 3)) == (2, 3)
    assert real_cpus((64, 65), (0, 1)) == (0, 1)
    assert real_cpus((0, 2), (0, 1)) == (0,)
    assert real_cpus((0,), ()) == ()


# ---- cgroups ------------------------------------------------------------------------------------

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_cgroup_mounts_and_own_groups() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [(m[0], m[1]) for m in mounts] == [
        ("/sys/fs/cgroup/cpu", "cgroup"), ("/sys/fs/cgroup/memory", "cgroup"), ("/sys/fs/cgroup/unified", "cgroup2")
    ]  # fmt: skip
    assert "memory" in mounts[1][2]
    own = parse_proc_cgroup("4:memory:/process_api/40cc\n1:cpu,cpuacct:/\n9:name=systemd:/\n0::/user.slice\n")
    assert own == {"memory": "/process_api/40cc", "cpu": "/", "cpuacct": "/", "systemd": "/", "": "/user.slice"}
    assert plan(1, {"memory": "/m/tuxai"}, "job-3-1") == CgroupPlan(1, {"memory": "/m/tuxai/job-3-1"})
    assert not plan(0, {}, "x")
    # launch.json carries it as JSON and back.
    planned = plan(2, {"unified": "/u/tuxai"}, "job-3-1")
    assert CgroupPlan.from_dict(json.loads(json.dumps(planned.to_dict()))) == planned
    assert nvidia_device_rules([0, 1])[:2] == ["c 195:0 rwm", "c 195:1 rwm"]


def test_device_rules_follow_minor_numbers_not_indices() -> None:
    from tests.conftest import fixture_text
    from tuxai.daemon.launch import device_rules
    from tuxai.hardware.nvidia_smi import parse_nvidia_smi_xml

    gpus = parse_nvidia_smi_xml(fixture_text("nvidia-smi-xml/rtx-a5000-x2-drv590.44.01-v13.xml")).gpus
    assert [(g.index, g.minor_number) for g in gpus] == [(0, 1), (1, 0)]
    by_index = {g.index: g for g in gpus}
    allocation = Allocation("n", (GpuShare(0, gpus[0].uuid),))
    assert device_rules(allocation, by_index, exists=lambda path: True) == (
        "c 195:1 rwm", "c 195:255 rwm", "c 195:254 rwm"
    )  # fmt: skip
    assert device_rules(allocation, by_index, exists=lambda path: False) == ()  # a simulated box: no device files
    assert device_rules(Allocation("n", cpus=(0,)), by_index, exists=lambda path: True) == ()
