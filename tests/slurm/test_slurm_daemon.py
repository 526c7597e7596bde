"""``tuxai up --slurm`` on a real two-node Slurm (issue 16): the daemon process, the CLI's client, sbatch.

One daemon for the tier (conftest); the job is examples/jobs/ddp.py unchanged, 2 nodes × 2 processes (gloo).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.daemon_helpers import REPO, DaemonProcess
from tests.integration.test_identity import NOBODY, as_nobody
from tests.slurm.cluster import Cluster
from tuxai.errors import UsageError
from tuxai.executor.slurm import parse_handle, slurm_id
from tuxai.model.job import JobState
from tuxai.model.slurm import parse_squeue_json
from tuxai.model.wire import JobDetail

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(180)]

JOBS = REPO / "examples" / "jobs"


def _slurm_job(daemon: DaemonProcess, job_id: int) -> int:
    """The Slurm job of the job's attempt: its handle in the store names the run directory that records it."""
    with sqlite3.connect(f"file:{daemon.home / 'tuxai.db'}?mode=ro", uri=True) as db:
        (handle,) = db.execute("SELECT run_dir FROM jobs WHERE id = ?", (job_id,)).fetchone()
    number = slurm_id(parse_handle(handle))
    assert number is not None, handle
    return number


def _logs(daemon: DaemonProcess, job_id: int) -> str:
    """Every node's output: rank 0's output.log, then output.rank1.log …"""
    job_dir = daemon.home / "jobs" / str(job_id)
    return "".join(p.read_text() for p in [job_dir / "output.log", *sorted(job_dir.glob("output.rank*.log"))])


def _wait(daemon: DaemonProcess, job_id: int, until: Callable[[JobDetail], bool], timeout_s: float = 120) -> JobDetail:
    """The job once ``until`` holds (polled: no sleep to be safe)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = daemon.job(job_id)
        if until(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id}: {daemon.job(job_id).state} {daemon.job(job_id).reason!r} after {timeout_s} s")


def test_ddp_trains_across_n1_and_n2_and_the_ranks_agree(slurm: Cluster, daemon: DaemonProcess) -> None:
    spec = {
        "command": [sys.executable, "ddp.py"],
        "workdir": str(JOBS),
        "nodes": 2,
        "gpus_per_node": 2,
        "launcher": "torchrun",
        "time": 300,
    }
    job_id = daemon.client.submit(spec, {"PATH": "/usr/bin:/bin"})
    job = _wait(daemon, job_id, lambda j: j.state.terminal)
    log = _logs(daemon, job_id)
    assert job.state is JobState.SUCCEEDED, (job.reason, log)
    places = re.findall(
        r"rank (\d)/4 RANK=\d WORLD_SIZE=4 NODE_RANK=(\d) LOCAL_RANK=\d CUDA_VISIBLE_DEVICES=(\S+)", log
    )
    assert sorted(p[0] for p in places) == ["0", "1", "2", "3"], log
    assert sorted(p[1] for p in places) == ["0", "0", "1", "1"] and {p[2] for p in places} == {"0,1"}, log
    checksums = set(re.findall(r"grad checksum (\S+)", log))
    assert len(re.findall(r"grad checksum", log)) == 4 and len(checksums) == 1, log
    slurm_id = _slurm_job(daemon, job_id)
    record = parse_squeue_json(slurm.run("squeue", "--json").stdout)[slurm_id]
    assert (record.state, record.nodes) == ("COMPLETED", "n[1-2]")
    node1 = subprocess.run(
        [sys.executable, "-m", "tuxai", "logs", "--home", str(daemon.home), "--rank", "1", str(job_id)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "NODE_RANK=1" in node1 and "NODE_RANK=0" not in node1, node1  # tuxai logs --rank: node 1's own
    assert re.search(r"^ *nodes +n1:0,1 n2:0,1$", _tuxai(daemon, "show", str(job_id)), re.MULTILINE)  # Slurm's choice


def test_more_gpus_than_any_node_has_is_slurms_refusal_in_one_line(daemon: DaemonProcess) -> None:
    with pytest.raises(UsageError) as refused:
        daemon.client.submit({"command": ["true"], "gpus": 3}, {})
    # sbatch --test-only's words (a plain sbatch says "Batch job submission failed: …")
    assert (
        refused.value.message
        == "Slurm refuses the job: allocation failure: Requested node configuration is not available"
    )
    assert "\n" not in refused.value.message


def _tuxai(daemon: DaemonProcess, *args: str) -> str:
    """What ``tuxai ARGS --home HOME`` prints."""
    argv = [sys.executable, "-m", "tuxai", args[0], "--home", str(daemon.home), *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_G1_G3_G4_a_job_slurm_queues_is_pending_then_running_where_slurm_put_it_and_outlives_a_sigkilled_daemon(
    slurm: Cluster, daemon: DaemonProcess
) -> None:
    marker, go = f"tuxai-slurm-hold-{time.monotonic_ns()}", slurm.root / f"go-{time.monotonic_ns()}"
    hog = daemon.client.submit(
        {"command": ["sh", "-c", f"sleep 300; echo {marker}"], "nodes": 2, "gpus_per_node": 2}, {}
    )
    _wait(daemon, hog, lambda j: j.state is JobState.RUNNING)
    script = f"while [ ! -e {go} ]; do sleep 0.1; done; exit 3"
    waiting = daemon.client.submit({"command": ["sh", "-c", script], "gpus": 1}, {})
    after = daemon.client.submit({"command": ["true"], "after": [f"{hog}:any"]}, {})  # tuxai's gate, not Slurm's
    # Slurm says None until its next scheduling pass, then why it waits
    job = _wait(daemon, waiting, lambda j: j.reason.startswith("queued in Slurm (") and "(Slurm: None)" not in j.reason)
    assert job.state is JobState.PENDING and job.started_at is None, job
    assert re.fullmatch(
        r"queued in Slurm \(job \d+\): (the nodes, GPUs or memory it asks for are in use \(Slurm: Resources\)"
        r"|jobs of higher priority are ahead of it \(Slurm: Priority\))",
        job.reason,
    ), job
    pending = _tuxai(daemon, "ls", "--state", "pending")
    assert re.search(rf"^{waiting} +sh +root +pending .* queued in Slurm \(job \d+\): ", pending, re.MULTILINE), pending
    assert re.search(rf"^{after} +true +root +pending .* waits for job {hog}", pending, re.MULTILINE), pending
    assert re.search(rf"^{hog} +sh +root +running +n1:0,1 n2:0,1 ", _tuxai(daemon, "ls"), re.MULTILINE)

    deadline = time.monotonic() + 30  # Slurm says RUNNING before the nodes have started it
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "the job never ran on the nodes"
        time.sleep(0.1)
    assert daemon.job(after).attempt == 0  # never handed to Slurm while its dependency runs
    daemon.client.cancel(hog)
    job = _wait(daemon, hog, lambda j: j.state.terminal)
    assert job.state is JobState.CANCELLED, job
    record = parse_squeue_json(slurm.run("squeue", "--json").stdout)[_slurm_job(daemon, hog)]
    assert record.state in ("CANCELLED", "COMPLETED", "FAILED"), record  # Slurm saw it end
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1  # no process on either node
    job = _wait(daemon, waiting, lambda j: j.state is not JobState.PENDING)  # the GPUs it waited for are free
    running = _tuxai(daemon, "ls", "--state", "running")
    assert re.search(rf"^{waiting} +sh +root +running +n[12]:[01] ", running, re.MULTILINE), running
    assert job.started_at is not None and job.started_at >= job.submitted_at and job.waited_s > 0, job
    daemon.kill9()  # G4: SIGKILL while Slurm runs the job: no goodbye, the job is Slurm's and goes on
    daemon.start()
    assert daemon.job(waiting).state is JobState.RUNNING
    go.touch()  # it ends under the new daemon, which never submitted it: its real end, run once
    job = _wait(daemon, waiting, lambda j: j.state.terminal)
    assert (job.state, job.exit_code, job.attempt, job.reason) == (JobState.FAILED, 3, 1, "exit code 3"), job
    assert _wait(daemon, after, lambda j: j.state.terminal).state is JobState.SUCCEEDED


def test_a_users_job_runs_as_that_user_in_slurm_never_as_root(slurm: Cluster, daemon: DaemonProcess) -> None:
    code, answer = as_nobody(daemon.home, "POST", "/v1/jobs", {"spec": {"command": ["id", "-u"]}, "environment": {}})
    assert code == 201, answer
    job_id = int(answer["id"])  # type: ignore[index]
    job = _wait(daemon, job_id, lambda j: j.state.terminal)
    assert job.state is JobState.SUCCEEDED, job
    record = parse_squeue_json(slurm.run("squeue", "--json").stdout)[_slurm_job(daemon, job_id)]
    assert record.user == "nobody"  # Slurm's job is nobody's: sbatch ran as nobody, not as the root daemon
    assert (daemon.home / "jobs" / str(job_id) / "output.log").read_text() == f"{NOBODY}\n"


CHECKPOINTING = """
ck="$TUXAI_CHECKPOINT_DIR/node-$TUXAI_NODE_RANK"
if [ -f "$ck" ]; then echo "node $TUXAI_NODE_RANK resumed from $(cat "$ck")"; exit 0; fi
trap 'echo "step 7" > "$ck"; echo "node $TUXAI_NODE_RANK saved"; exit 99' TERM
echo "node $TUXAI_NODE_RANK started"
while :; do sleep 0.2; done
"""


def _started_on_both(daemon: DaemonProcess, job_id: int, nodes: int = 2) -> None:
    logs = [daemon.home / "jobs" / str(job_id) / name for name in ("output.log", "output.rank1.log")[:nodes]]
    deadline = time.monotonic() + 60  # the logs are made when the job goes to Slurm
    while not all(log.exists() and f"node {rank} started" in log.read_text() for rank, log in enumerate(logs)):
        assert time.monotonic() < deadline, [log.read_text() for log in logs if log.exists()]
        time.sleep(0.2)


def test_slurms_grace_signal_checkpoints_every_node_and_the_requeued_job_resumes(
    slurm: Cluster, daemon: DaemonProcess
) -> None:
    spec = {"command": ["sh", "-c", CHECKPOINTING], "nodes": 2, "launcher": "none", "grace": 30, "requeue": True}
    job_id = daemon.client.submit(spec, {"PATH": "/usr/bin:/bin"})
    _started_on_both(daemon, job_id)
    # What --signal=B:TERM@<grace> does before the time limit: SIGTERM to the batch shell (srun),
    # which passes it to every node's shim; sent now rather than waiting for a limit.
    slurm.run("scancel", "--batch", "--signal=TERM", str(_slurm_job(daemon, job_id)))
    job = _wait(daemon, job_id, lambda j: j.state is JobState.SUCCEEDED or j.state.terminal)
    log = _logs(daemon, job_id)
    assert job.state is JobState.SUCCEEDED and job.attempt == 2, (job, log)
    assert "node 0 saved" in log and "node 1 saved" in log, log
    assert "node 0 resumed from step 7" in log and "node 1 resumed from step 7" in log, log


@pytest.mark.parametrize("nodes", [1, 2])
def test_a_cancel_in_the_grace_period_lets_every_node_write_its_checkpoint(daemon: DaemonProcess, nodes: int) -> None:
    spec = {"command": ["sh", "-c", CHECKPOINTING], "nodes": nodes, "launcher": "none", "grace": 30}
    job_id = daemon.client.submit(spec, {"PATH": "/usr/bin:/bin"})
    _started_on_both(daemon, job_id, nodes)
    daemon.client.cancel(job_id)
    job = _wait(daemon, job_id, lambda j: j.state.terminal)
    assert job.state is JobState.CANCELLED, job
    checkpoints = daemon.home / "jobs" / str(job_id) / "checkpoint"
    assert sorted(p.name for p in checkpoints.iterdir()) == [f"node-{rank}" for rank in range(nodes)]
    assert (checkpoints / f"node-{nodes - 1}").read_text() == "step 7\n"
