"""A Slurm attempt runs at most once (executor.slurm): the claim between start and abandon, a stop
before the start, sbatch's refusal. Real files; Slurm's commands are stand-in programs on PATH
that record what they were given (the Slurm tier, tests/slurm, runs the real ones)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import TWO_GPUS
from tuxai.daemon.arrays import cancel_array, hold_array
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.engine_queue import ENGINE_QUEUE
from tuxai.daemon.jobdirs import new_job_dir
from tuxai.daemon.launch import prepare_attempt
from tuxai.daemon.slurm import SlurmDaemon
from tuxai.errors import UsageError
from tuxai.executor import slurm as executor_slurm
from tuxai.executor import slurm_node
from tuxai.executor.attempt import AttemptHandle, Seen
from tuxai.executor.rundir import Launch, read_stop
from tuxai.executor.slurm import SlurmExecutor, job_name, parse_handle, slurm_id
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobSpec, JobState, StopReason
from tuxai.model.jobfile import spec_from_dict
from tuxai.store.jobs import Store


@pytest.fixture
def slurm_bin(tmp_path: Path) -> Path:
    """sbatch (records its arguments and script, answers 77 or, with ``refuse``, an error) and squeue
    (``squeue.json`` when the test wrote one, else no jobs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/sbatch.calls; cat >> {tmp_path}/sbatch.calls\n'
        f"if [ -e {tmp_path}/refuse ]; then echo 'sbatch: error: Batch job submission failed: Invalid account' >&2;"
        " exit 1; fi\necho 77\n"
    )
    (bin_dir / "squeue").write_text(f"#!/bin/sh\ncat {tmp_path}/squeue.json 2>/dev/null || echo '{{\"jobs\": []}}'\n")
    (bin_dir / "scancel").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/scancel.calls\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def _prepared(tmp_path: Path, slurm_bin: Path) -> tuple[SlurmExecutor, str]:
    job_dir = tmp_path / "jobs" / "7"
    job_dir.mkdir(parents=True)
    executor = SlurmExecutor(lambda _: JobSpec(("true",)), env={"PATH": f"{slurm_bin}:/usr/bin:/bin"})
    launch = Launch(7, 1, ("true",), {}, "/", str(job_dir / "output.log"), job_dir=str(job_dir))
    return executor, executor.prepare(launch)


def _calls(tmp_path: Path) -> str:
    path = tmp_path / "sbatch.calls"
    return path.read_text() if path.exists() else ""


def test_an_attempt_given_up_is_never_submitted(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    assert executor.observe(handle).seen is Seen.NOT_STARTED
    assert executor.abandon(handle) and executor.abandon(handle)  # the daemon's claim won, and stays
    executor.start(handle)  # a late start: nothing
    assert _calls(tmp_path) == "" and slurm_id(parse_handle(handle)) is None


def test_a_started_attempt_is_submitted_once_and_cannot_be_given_up(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.start(handle)
    executor.start(handle)
    calls = _calls(tmp_path)
    assert calls.count("--parsable") == 1 and f"--job-name={job_name(parse_handle(handle))}" in calls
    assert "-m tuxai.executor.slurm_node" in calls  # the batch script came on stdin
    assert slurm_id(parse_handle(handle)) == 77
    assert not executor.abandon(handle)
    assert executor.observe(handle).seen is Seen.LOST  # claimed, and squeue lists no job 77


def test_a_stop_before_the_start_wins(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.stop(handle, StopReason.CANCEL)
    executor.start(handle)
    observed = executor.observe(handle)
    assert _calls(tmp_path) == ""
    assert observed.seen is Seen.EXITED and observed.status is not None
    assert observed.status.stop_reason is StopReason.CANCEL
    assert json.loads((parse_handle(handle) / "stop.json").read_text()) == {"reason": "cancel"}


def test_sbatchs_refusal_is_the_attempts_end_in_one_line(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    (tmp_path / "refuse").touch()
    executor.start(handle)
    observed = executor.observe(handle)
    assert observed.seen is Seen.EXITED and observed.status is not None
    assert observed.status.error == "Slurm refused it: Batch job submission failed: Invalid account"


def _squeue(tmp_path: Path, **job: object) -> None:
    """What the stand-in squeue lists from now on: one job."""
    (tmp_path / "squeue.json").write_text(json.dumps({"jobs": [{"job_state": "RUNNING", **job}]}))


def test_S2_a_node_link_never_makes_root_write_stop_json(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.start(handle)
    run_dir, victim = parse_handle(handle), tmp_path / "victim"
    victim.mkdir()
    (run_dir / "node-0" / "run-0").symlink_to(victim)  # node-0 is the user's: its run-<n> whatever they like
    executor.stop(handle, StopReason.CANCEL)
    assert list(victim.iterdir()) == []  # root wrote nothing through the link
    node_run = run_dir / "node-0" / "run-1"  # what the node runner makes, as the user
    node_run.mkdir()
    slurm_node.link_stop(node_run)
    assert read_stop(node_run) is StopReason.CANCEL  # the node's shim still reads the stop asked


def test_S4_a_users_malformed_node_files_are_no_status_never_an_error(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.start(handle)  # Slurm's job 77, which squeue no longer lists: judged from the nodes' files
    node = parse_handle(handle) / "node-0"
    for name in ("run-x", "run-", "run-1x"):
        (node / name).mkdir()
    (node / "run-0").mkdir()
    forged = {"phase": "exited", "shim_pid": 1, "ended_at": "x", "exit_code": "0", "signal": True}
    forged |= {"oom_killed": "yes", "error": 5, "wall_s": float("nan"), "stop_reason": ["preempt"]}
    (node / "run-0" / "status.json").write_text(json.dumps(forged))
    observed = executor.observe(handle)
    assert observed.seen is Seen.EXITED and observed.status is not None
    status = observed.status
    assert isinstance(status.ended_at, float) and (status.exit_code, status.signal, status.wall_s) == (None, None, None)
    assert (status.oom_killed, status.error, status.stop_reason) == (False, "", None)
    (node / "run-0" / "status.json").write_text("[" * 60000)  # deeper than json's recursion
    assert executor.observe(handle).seen is Seen.LOST


def test_S7_the_end_is_slurms_clock_not_the_users_file(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    executor.start(handle)
    (parse_handle(handle) / "node-0" / "run-0").mkdir()
    forged = {"phase": "exited", "shim_pid": 1, "started_at": 1.0, "ended_at": 1.0, "exit_code": 0}
    (parse_handle(handle) / "node-0" / "run-0" / "status.json").write_text(json.dumps(forged))
    for end_time in ({"set": True, "infinite": False, "number": 1_700_000_000}, 1_700_000_000):  # 23.02 on, 22.05
        _squeue(tmp_path, job_id=77, job_state="COMPLETED", end_time=end_time, name="x", user_id=os.getuid())
        observed = SlurmExecutor(executor.spec_of, env=executor.env).observe(handle)
        assert observed.status is not None and observed.status.ended_at == 1_700_000_000.0


def test_S8_a_job_is_adopted_by_name_only_from_the_attempts_user(tmp_path: Path, slurm_bin: Path) -> None:
    executor, handle = _prepared(tmp_path, slurm_bin)
    run_dir = parse_handle(handle)
    (run_dir / "claimed").write_text("start")  # the daemon died between the claim and Slurm's id
    _squeue(tmp_path, job_id=99, name=job_name(run_dir), user_id=os.getuid() + 4242)  # somebody else's job
    assert executor.observe(handle).seen is Seen.LOST and slurm_id(run_dir) is None
    _squeue(tmp_path, job_id=98, name=job_name(run_dir), user_id=os.getuid())
    adopted = SlurmExecutor(executor.spec_of, env=executor.env)  # a fresh squeue
    assert adopted.observe(handle).seen is Seen.ALIVE and slurm_id(run_dir) == 98


# ---- the daemon in front of Slurm (daemon.slurm), on the same stand-ins: issue 16's gaps ------------------


@pytest.fixture
def slurm_daemon(tmp_path: Path, slurm_bin: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlurmDaemon]:
    """A ``SlurmDaemon`` on a real store; squeue asked afresh at every look (what the test wrote last)."""
    monkeypatch.setattr(executor_slurm, "QUEUE_TTL_S", 0.0)
    store = Store(tmp_path / "tuxai.db")
    (tmp_path / "home").mkdir()
    config = DaemonConfig(tmp_path / "home", load_inventory_file(TWO_GPUS))
    executor = SlurmExecutor(lambda job_id: store.get(job_id).spec, env={"PATH": f"{slurm_bin}:/usr/bin:/bin"})
    try:
        yield SlurmDaemon(config, store, executor)
    finally:
        store.close()


ROOT = Caller("root", 0, 0, admin=True)
GANG = {"command": ["true"], "nodes": 2, "gpus_per_node": 2}


def _exit_on(handle: str, ranks: range, ended_at: float) -> None:
    """What each node's shim leaves when its job exits 0 (``node-<rank>/run-0/status.json``)."""
    for rank in ranks:
        run = parse_handle(AttemptHandle(handle)) / f"node-{rank}" / "run-0"
        run.mkdir()
        (run / "status.json").write_text(json.dumps({"phase": "exited", "exit_code": 0, "ended_at": ended_at}))


def test_G1_a_job_slurm_keeps_queued_is_pending_then_runs_from_slurms_start_where_slurm_put_it(
    tmp_path: Path, slurm_daemon: SlurmDaemon
) -> None:
    store, now = slurm_daemon.store, time.time()
    job_id = slurm_daemon.submit(spec_from_dict(GANG), ROOT, {}, now)
    _squeue(tmp_path, job_id=77, job_state="PENDING", state_reason="Resources")
    words = "queued in Slurm (job 77): the nodes, GPUs or memory it asks for are in use (Slurm: Resources)"
    for tick, reason in ((1, "queued in Slurm: submitted"), (2, words), (3, words)):  # Slurm's words from the next pass
        slurm_daemon.tick(now + tick)
        job = store.get(job_id)
        assert (job.state, job.reason, job.started_at) == (JobState.PENDING, reason, None), job
        assert [j.id for j in store.jobs([JobState.PENDING])] == [job_id]  # what `ls --state pending` asks
    assert _calls(tmp_path).count("--parsable") == 1  # submitted once, kept while queued (--test-only has none)
    gres = ["gpu:fake:2(IDX:0-1)", "gpu:fake:1(IDX:1)"]
    _squeue(tmp_path, job_id=77, start_time=int(now) + 3, nodes="n[1-2]", gres_detail=gres)
    slurm_daemon.tick(now + 10)
    job = store.get(job_id)
    assert (job.state, job.reason, job.started_at) == (JobState.RUNNING, "", int(now) + 3.0)  # Slurm's start
    assert job.allocation is not None and job.allocation.gpus == ()  # none of the daemon's own machine
    assert [(a.node, [g.index for g in a.gpus]) for a in job.allocation.more] == [("n1", [0, 1]), ("n2", [1])]
    # G5: squeue no longer lists it (no accounting storage: no sacct), the nodes' status files decide
    (tmp_path / "squeue.json").write_text('{"jobs": []}')
    _exit_on(job.run_dir, range(2), now + 20)
    slurm_daemon.tick(now + 30)
    job = store.get(job_id)
    assert (job.state, job.ended_at) == (JobState.SUCCEEDED, now + 20), job


def test_G5_a_job_squeue_forgot_with_a_node_that_never_wrote_fails_with_the_count(
    tmp_path: Path, slurm_daemon: SlurmDaemon
) -> None:
    now = time.time()
    job_id = slurm_daemon.submit(spec_from_dict(GANG), ROOT, {}, now)
    _squeue(tmp_path, job_id=77, start_time=int(now) + 1, nodes="n[1-2]")
    slurm_daemon.tick(now + 2)
    (tmp_path / "squeue.json").write_text('{"jobs": []}')
    _exit_on(slurm_daemon.store.get(job_id).run_dir, range(1), now + 3)
    slurm_daemon.tick(now + 4)
    job = slurm_daemon.store.get(job_id)
    assert (job.state, job.reason) == (JobState.FAILED, "Slurm no longer knows it: 1 of 2 node(s) recorded an exit")


def test_G1_a_job_that_ended_between_two_passes_runs_then_ends_on_slurms_clock(
    tmp_path: Path, slurm_daemon: SlurmDaemon
) -> None:
    now = time.time()
    job_id = slurm_daemon.submit(spec_from_dict({"command": ["true"]}), ROOT, {}, now)
    _squeue(tmp_path, job_id=77, job_state="PENDING", state_reason="Priority")
    slurm_daemon.tick(now + 1)
    _squeue(tmp_path, job_id=77, job_state="COMPLETED", start_time=int(now) + 2, end_time=int(now) + 4, nodes="n1")
    _exit_on(slurm_daemon.store.get(job_id).run_dir, range(1), now + 9)
    slurm_daemon.tick(now + 5)
    job = slurm_daemon.store.get(job_id)
    assert (job.state, job.started_at, job.ended_at) == (JobState.SUCCEEDED, int(now) + 2.0, int(now) + 4.0)
    moves = [(e["from_state"], e["to_state"]) for e in slurm_daemon.store.events(job_id)]
    assert moves[-2:] == [("pending", "running"), ("running", "succeeded")]


def test_G1_cancel_of_a_job_queued_in_slurm_removes_slurms_job(tmp_path: Path, slurm_daemon: SlurmDaemon) -> None:
    now = time.time()
    job_id = slurm_daemon.submit(spec_from_dict({"command": ["true"]}), ROOT, {}, now)
    _squeue(tmp_path, job_id=77, job_state="PENDING", state_reason="Priority")
    slurm_daemon.tick(now + 1)
    with pytest.raises(UsageError, match="already queued in Slurm"):
        slurm_daemon.hold(job_id, ROOT, True)
    assert slurm_daemon.cancel(job_id, ROOT, now + 2).state is JobState.CANCELLED
    assert (tmp_path / "scancel.calls").read_text() == "77\n"  # the queued job, not a signal to its nodes
    assert read_stop(parse_handle(AttemptHandle(slurm_daemon.store.get(job_id).run_dir))) is StopReason.CANCEL


def test_G3_a_job_tuxai_holds_back_never_reaches_sbatch_and_says_tuxais_reason(
    tmp_path: Path, slurm_daemon: SlurmDaemon
) -> None:
    now = time.time()
    first = slurm_daemon.submit(spec_from_dict({"command": ["true"]}), ROOT, {}, now)
    second = slurm_daemon.submit(spec_from_dict({"command": ["true"], "after": [str(first)]}), ROOT, {}, now)
    held = slurm_daemon.submit(spec_from_dict({"command": ["true"], "hold": True}), ROOT, {}, now)
    _squeue(tmp_path, job_id=77, job_state="PENDING", state_reason="Priority")
    slurm_daemon.tick(now + 1)
    store = slurm_daemon.store
    assert _calls(tmp_path).count("--parsable") == 1  # only the first went to Slurm
    assert (store.get(second).reason, store.get(second).run_dir) == (f"waits for job {first} to end ok (pending)", "")
    assert store.get(held).reason == "held (`tuxai release` lets it start)"


def test_G4_an_attempt_recorded_but_never_submitted_is_submitted_once_by_the_next_daemon(
    tmp_path: Path, slurm_daemon: SlurmDaemon
) -> None:
    now, store = time.time(), slurm_daemon.store
    job_id = slurm_daemon.submit(spec_from_dict({"command": ["true"]}), ROOT, {}, now)
    log = str(new_job_dir(slurm_daemon.config.home, job_id) / "output.log")
    attempt, handle = prepare_attempt(
        slurm_daemon.executor, slurm_daemon.config, store.get(job_id), ENGINE_QUEUE, log, {}
    )
    store.update(job_id, attempt=attempt, run_dir=handle, log_path=log, allocation=ENGINE_QUEUE)  # then SIGKILL
    again = SlurmDaemon(
        slurm_daemon.config, store, SlurmExecutor(slurm_daemon.slurm.spec_of, env=slurm_daemon.slurm.env)
    )
    _squeue(tmp_path, job_id=77, job_state="PENDING", state_reason="Priority")
    again.reconcile(now + 1)
    for tick in (1, 2):
        again.tick(now + tick)
    assert _calls(tmp_path).count("--parsable") == 1 and slurm_id(parse_handle(handle)) == 77
    job = store.get(job_id)
    assert (job.state, job.attempt, job.run_dir) == (JobState.PENDING, 1, handle)


def test_G3_an_arrays_cap_hold_and_cancel_know_its_task_queued_in_slurm(
    tmp_path: Path, slurm_daemon: SlurmDaemon
) -> None:
    now = time.time()
    array = slurm_daemon.submit(spec_from_dict({"command": ["true"], "array": "0-2%1"}), ROOT, {}, now)
    _squeue(tmp_path, job_id=77, job_state="PENDING", state_reason="Priority")
    for tick in (1, 2, 3):
        slurm_daemon.tick(now + tick)
    assert _calls(tmp_path).count("--parsable") == 1  # one task in Slurm's queue: the cap of 1 is used
    reasons = sorted(j.reason for j in slurm_daemon.store.jobs([JobState.PENDING]))
    assert reasons[-1].startswith("queued in Slurm (job 77)") and "%1" in reasons[0], reasons
    held = hold_array(slurm_daemon, array, ROOT, True)  # the two tuxai keeps; Slurm's own is not tuxai's to hold
    assert sorted(t.held for t in held) == [False, True, True]
    assert all(t.state is JobState.CANCELLED for t in cancel_array(slurm_daemon, array, ROOT, now + 4))
    assert (tmp_path / "scancel.calls").read_text() == "77\n"  # the task queued in Slurm left Slurm's queue


def test_G3_a_retrys_backoff_is_tuxais_and_the_retry_is_a_new_slurm_job(
    tmp_path: Path, slurm_daemon: SlurmDaemon
) -> None:
    now = float(int(time.time()))  # whole seconds: Slurm's end_time is one
    job_id = slurm_daemon.submit(
        spec_from_dict({"command": ["false"], "retries": 1, "retry_backoff": 30}), ROOT, {}, now
    )
    _squeue(tmp_path, job_id=77, job_state="FAILED", start_time=int(now), end_time=int(now) + 1, nodes="n1")
    slurm_daemon.tick(now + 1)  # submitted
    run = parse_handle(AttemptHandle(slurm_daemon.store.get(job_id).run_dir)) / "node-0" / "run-0"
    run.mkdir()  # the node's shim: exit 1
    (run / "status.json").write_text(json.dumps({"phase": "exited", "exit_code": 1, "ended_at": now + 1}))
    for tick in (2, 3):
        slurm_daemon.tick(now + tick)
    job = slurm_daemon.store.get(job_id)
    assert (job.state, job.reason) == (JobState.REQUEUED, "exit code 1; retry in 28 s"), job
    assert _calls(tmp_path).count("--parsable") == 1  # the backoff is tuxai's: nothing in Slurm meanwhile
    slurm_daemon.tick(now + 32)
    assert _calls(tmp_path).count("--parsable") == 2 and slurm_daemon.store.get(job_id).attempt == 2
