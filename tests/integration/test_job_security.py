"""The security issue's findings about a root daemon's jobs, each tried as the attacker did.

A root daemon, the unprivileged user ``nobody`` as the client (curl on the socket), real
jobs, real files. Each test names its finding (A4 … F5) and failed on the code before the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, finish, kill_leftovers
from tests.integration.test_identity import NOBODY, as_nobody
from tests.tmpfs import mounted_tmpfs
from tuxai.model.wire import JobDetail

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root: a root daemon and another user")
PIDS_MAX = 64


def _base() -> Path:
    base = Path(tempfile.mkdtemp(prefix="tuxai-sec-"))
    base.chmod(0o755)
    return base


@pytest.fixture(scope="module")
def root_daemon() -> Iterator[DaemonProcess]:
    """One root daemon for the module, its home reachable by nobody."""
    base = _base()
    process = DaemonProcess(base / "home", extra=("--job-pids-max", str(PIDS_MAX))).start()
    try:
        yield process
    finally:
        finish(process)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A root-owned directory (0755) holding a root-only file, like /root or /etc would."""
    base = Path(tempfile.mkdtemp(prefix="tuxai-root-"))
    base.chmod(0o755)
    (base / "secret").write_text("root's secret\n")
    (base / "secret").chmod(0o600)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def submit_as_nobody(daemon: DaemonProcess, spec: dict[str, object], environment: dict[str, str] | None = None) -> int:
    body: dict[str, object] = {"spec": {"workdir": "/tmp", **spec}}
    if environment is not None:
        body["environment"] = environment
    code, answer = as_nobody(daemon.home, "POST", "/v1/jobs", body)
    assert code == 201, answer
    return int(answer["id"])  # type: ignore[index]


def wait_for(predicate: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def job_of(daemon: DaemonProcess, job_id: int) -> JobDetail:
    return daemon.job(job_id)


def log_text(daemon: DaemonProcess, job_id: int) -> str:
    """The job's output so far ('' before it has any)."""
    path = job_of(daemon, job_id).log_path
    try:
        return Path(str(path)).read_text() if path else ""
    except FileNotFoundError:
        return ""


def job_dir(daemon: DaemonProcess, job_id: int) -> Path:
    return Path(str(job_of(daemon, job_id).log_path)).parent


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_A5_a_job_cannot_export_tuxai_variables_or_get_a_root_path_chowned(
    root_daemon: DaemonProcess, private_dir: Path
) -> None:
    spec = {
        "command": ["sh", "-c", "touch $TUXAI_CHECKPOINT_DIR/owned"],
        "export": {"TUXAI_CHECKPOINT_DIR": str(private_dir)},
    }
    code, answer = as_nobody(root_daemon.home, "POST", "/v1/jobs", {"spec": {"workdir": "/tmp", **spec}})
    assert code == 400, answer
    assert "TUXAI_CHECKPOINT_DIR" in answer["message"]  # type: ignore[index]
    # The submitter's own environment cannot carry it either: the job gets the daemon's directory.
    job_id = submit_as_nobody(
        root_daemon,
        {
            "command": [
                "sh",
                "-c",
                "echo $TUXAI_CHECKPOINT_DIR; echo $CUDA_VISIBLE_DEVICES; touch $TUXAI_CHECKPOINT_DIR/x",
            ]
        },
        {"TUXAI_CHECKPOINT_DIR": str(private_dir), "CUDA_VISIBLE_DEVICES": "0,1", "PATH": "/usr/bin:/bin"},
    )
    job = root_daemon.wait_all([job_id])[job_id]
    assert job.state == "succeeded", job.reason
    checkpoint, visible = log_text(root_daemon, job_id).splitlines()
    assert checkpoint == str(job_dir(root_daemon, job_id) / "checkpoint")
    assert visible == ""  # a CPU job sees no GPU, whatever the submitter had
    assert (private_dir.stat().st_uid, (private_dir / "secret").stat().st_uid) == (0, 0)
    assert not (private_dir / "x").exists() and not (private_dir / "owned").exists()


def test_A6_A7_show_never_follows_a_link_or_opens_a_fifo_the_user_planted(
    root_daemon: DaemonProcess, private_dir: Path
) -> None:
    script = (
        f'ln -s {private_dir}/secret "$TUXAI_CHECKPOINT_DIR/endpoint"; '
        'rm -f "$TUXAI_ENDPOINT_FILE" 2>/dev/null; ln -s {0}/secret "$TUXAI_ENDPOINT_FILE" 2>/dev/null; '
        'mkfifo "$TUXAI_CHECKPOINT_DIR/fifo"; echo ready; sleep 60'
    ).replace("{0}", str(private_dir))
    job_id = submit_as_nobody(root_daemon, {"command": ["sh", "-c", script], "grace": "1s"})
    wait_for(lambda: "ready" in log_text(root_daemon, job_id))
    try:
        for _ in range(50):  # the old daemon answered the link's target; a FIFO hung its thread pool
            code, shown = as_nobody(root_daemon.home, "GET", f"/v1/jobs/{job_id}")
            assert code == 200 and "root's secret" not in str(shown), shown
            assert shown["endpoint"] is None  # type: ignore[index]
        fifo_dir = job_dir(root_daemon, job_id)
        # The endpoint file is nobody's regular file in a directory nobody cannot change.
        endpoint = fifo_dir / "endpoint"
        assert stat.S_ISREG(endpoint.lstat().st_mode) and endpoint.stat().st_uid == NOBODY
        # The job writes its URL there, and show reads it.
        subprocess.run(
            ["sh", "-c", f"echo http://127.0.0.1:1234 > {endpoint}"], user=NOBODY, group=NOBODY, check=True, cwd="/tmp"
        )
        code, shown = as_nobody(root_daemon.home, "GET", f"/v1/jobs/{job_id}")
        assert shown["endpoint"] == "http://127.0.0.1:1234"  # type: ignore[index]
        # A FIFO in place of the log (were it possible) would not block the log route either.
        code, _ = as_nobody(root_daemon.home, "GET", "/v1/health")
        assert code == 200
    finally:
        root_daemon.client.cancel(job_id)
        root_daemon.wait_all([job_id])


def test_A4_the_store_and_other_users_job_files_are_private(root_daemon: DaemonProcess) -> None:
    job_id = submit_as_nobody(
        root_daemon, {"command": ["sh", "-c", "echo TOKEN=hunter2; touch $TUXAI_CHECKPOINT_DIR/ckpt"]},
        {"API_TOKEN": "hunter2", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert root_daemon.wait_all([job_id])[job_id].state == "succeeded"
    directory = job_dir(root_daemon, job_id)
    run_dir = directory / "run-1"
    expected = {
        directory.parent: (0, 0o711),
        directory: (0, 0o711),
        run_dir: (0, 0o700),
        run_dir / "launch.json": (0, 0o600),
        directory / "output.log": (NOBODY, 0o600),
        directory / "checkpoint": (NOBODY, 0o700),
    }
    for path, (uid, mode) in expected.items():
        info = path.lstat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (uid, mode), path
    # Another local user (daemon, uid 1) reads none of it: not the log, the environment or the store.
    for path in (directory / "output.log", run_dir / "launch.json", root_daemon.home / "tuxai.db"):
        done = subprocess.run(["cat", str(path)], user=1, group=1, capture_output=True, text=True, cwd="/tmp")
        assert done.returncode != 0 and "hunter2" not in done.stdout, path
    # The owner reads their own log.
    done = subprocess.run(
        ["cat", str(directory / "output.log")], user=NOBODY, group=NOBODY, capture_output=True, text=True
    )
    assert done.stdout == "TOKEN=hunter2\n"


def test_A8_the_workdir_is_entered_as_the_user_and_cannot_be_probed(
    root_daemon: DaemonProcess, private_dir: Path
) -> None:
    private_dir.chmod(0o700)
    (private_dir / "sub").mkdir()
    existing = submit_as_nobody(root_daemon, {"command": ["cat", "../secret"], "workdir": str(private_dir / "sub")})
    missing = submit_as_nobody(root_daemon, {"command": ["true"], "workdir": str(private_dir / "nope")})
    jobs = root_daemon.wait_all([existing, missing])
    for job in jobs.values():  # the same answer whether the directory exists or not
        assert job.state == "failed" and "Permission denied" in str(job.reason), job.reason
    assert "root's secret" not in Path(str(jobs[existing].log_path)).read_text()


def test_F2_a_detached_child_dies_with_its_job_and_with_cancel(root_daemon: DaemonProcess) -> None:
    pidfile = Path(tempfile.mkdtemp(prefix="tuxai-f2-"))
    pidfile.chmod(0o777)
    script = "setsid sh -c 'echo $$ > {0}/$TUXAI_JOB_ID; exec sleep 300' </dev/null >/dev/null 2>&1 & sleep 0.5"
    ended = submit_as_nobody(root_daemon, {"command": ["sh", "-c", script.format(pidfile)]})
    assert root_daemon.wait_all([ended])[ended].state == "succeeded"
    child = int((pidfile / str(ended)).read_text())
    wait_for(lambda: not alive(child), timeout_s=10)

    cancelled = submit_as_nobody(
        root_daemon, {"command": ["sh", "-c", script.format(pidfile) + "; echo up; sleep 300"], "grace": "1s"}
    )
    wait_for(lambda: (pidfile / str(cancelled)).exists() and (pidfile / str(cancelled)).read_text().strip() != "")
    child = int((pidfile / str(cancelled)).read_text())
    root_daemon.client.cancel(cancelled)
    assert root_daemon.wait_all([cancelled])[cancelled].state == "cancelled"
    wait_for(lambda: not alive(child), timeout_s=10)
    shutil.rmtree(pidfile)


def test_F5_a_fork_bomb_stays_within_the_jobs_task_cap(root_daemon: DaemonProcess) -> None:
    script = (
        "n=0; i=0; while [ $i -lt 200 ]; do i=$((i+1)); (sleep 20 &) 2>/dev/null || n=$((n+1)); done; "
        "echo refused=$n; grep :pids: /proc/self/cgroup || grep ^0:: /proc/self/cgroup"
    )
    job_id = submit_as_nobody(root_daemon, {"command": ["sh", "-c", script], "time": "60s"})
    job = root_daemon.wait_all([job_id])[job_id]
    out = Path(str(job.log_path)).read_text()
    refused = int(out.split("refused=")[1].split()[0])
    assert refused > 0, out  # the cap (64 tasks) stopped it, not the machine's limit
    group = out.strip().splitlines()[-1].split(":", 2)[2]
    assert f"job-{job_id}-1" in group


def test_D9_a_vanished_run_directory_never_starts_a_second_attempt(root_daemon: DaemonProcess) -> None:
    job_id = submit_as_nobody(root_daemon, {"command": ["sh", "-c", "echo $$; exec sleep 300"], "retries": 3})
    wait_for(lambda: log_text(root_daemon, job_id).strip() != "")
    pid = int(log_text(root_daemon, job_id).split()[0])
    shutil.rmtree(job_dir(root_daemon, job_id) / "run-1")
    job = root_daemon.wait_all([job_id], timeout_s=30)[job_id]
    assert job.state == "failed" and "vanished" in str(job.reason), job
    assert job.attempt == 1 and not (job_dir(root_daemon, job_id) / "run-2").exists()
    wait_for(lambda: not alive(pid), timeout_s=10)


def test_D4_an_emptied_store_never_hands_an_old_job_directory_to_a_new_job() -> None:
    base = _base()
    daemon = DaemonProcess(base / "home").start()
    try:
        old = daemon.client.submit({"command": ["sh", "-c", "echo root-log; touch $TUXAI_CHECKPOINT_DIR/root-ckpt"]})
        assert daemon.wait_all([old])[old].state == "succeeded"
        daemon.stop()
        for leftover in (base / "home").glob("tuxai.db*"):
            leftover.unlink()
        daemon.start()
        new = submit_as_nobody(
            daemon, {"command": ["sh", "-c", "ls $TUXAI_CHECKPOINT_DIR; cat $TUXAI_CHECKPOINT_DIR/../output.log"]}
        )
        assert new == old  # the id came back with the emptied store …
        daemon.wait_all([new])
        assert job_dir(daemon, new) != base / "home" / "jobs" / str(old)  # … its directory did not
        code, text = as_nobody_log(daemon, new)
        assert code == 200 and "root-log" not in text and "root-ckpt" not in text
    finally:
        finish(daemon)
        shutil.rmtree(base, ignore_errors=True)


def as_nobody_log(daemon: DaemonProcess, job_id: int) -> tuple[int, str]:
    done = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "--unix-socket", str(daemon.home / "tuxai.sock"),
         f"http://tuxai/v1/jobs/{job_id}/log"],
        capture_output=True, text=True, cwd="/tmp", user=NOBODY, group=NOBODY, extra_groups=[], timeout=30, check=True,
    )  # fmt: skip
    text, _, code = done.stdout.rpartition("\n")
    return int(code), text


def test_D12_two_daemons_on_two_homes_never_share_a_job_group() -> None:
    base = _base()
    first, second = DaemonProcess(base / "a").start(), DaemonProcess(base / "b").start()
    try:
        spec = {"command": ["sh", "-c", "echo $$; exec sleep 300"], "mem": "256MiB", "grace": "1s"}
        a, b = first.client.submit(spec), second.client.submit(spec)
        assert a == b == 1
        logs = [first.home / "jobs" / "1" / "output.log", second.home / "jobs" / "1" / "output.log"]
        wait_for(lambda: all(p.exists() and p.read_text().strip() for p in logs))
        pids = [int(p.read_text().split()[0]) for p in logs]
        groups = [Path(f"/proc/{pid}/cgroup").read_text() for pid in pids]
        assert groups[0] != groups[1]
        first.client.cancel(a)
        assert first.wait_all([a])[a].state == "cancelled"
        time.sleep(0.5)
        assert alive(pids[1]), "cancelling one daemon's job killed the other's"
        assert next(j for j in second.client.jobs() if j.id == b).state == "running"
    finally:
        finish(first)
        finish(second)
        shutil.rmtree(base, ignore_errors=True)


def test_D13_after_a_crash_a_recorded_pgid_that_now_belongs_to_another_process_is_not_killed() -> None:
    base = _base()
    daemon = DaemonProcess(base / "home").start()
    bystander = None
    try:
        job_id = daemon.client.submit({"command": ["sh", "-c", "echo started; exec sleep 300"]})
        status_file = base / "home" / "jobs" / str(job_id) / "run-1" / "status.json"
        wait_for(lambda: status_file.exists() and '"running"' in status_file.read_text())
        # A crash: the daemon, the shim and the job die together.
        daemon.kill9()
        kill_leftovers(base / "home")
        time.sleep(0.2)
        # An unrelated process now has the number the status file recorded (as after pid reuse).
        bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
        data = json.loads(status_file.read_text())
        data.update(pgid=bystander.pid, pid=bystander.pid)
        status_file.write_text(json.dumps(data))
        daemon.start()
        job = daemon.wait_all([job_id], timeout_s=30)[job_id]
        assert job.state in ("failed", "pending", "requeued") or "died" in str(job.reason)
        time.sleep(0.3)
        assert bystander.poll() is None, "the daemon killed an unrelated process group"
    finally:
        if bystander is not None:
            bystander.kill()
            bystander.wait()
        finish(daemon)
        shutil.rmtree(base, ignore_errors=True)


def test_D8_the_final_status_is_kept_when_the_disk_is_full() -> None:
    base = _base()
    try:
        with mounted_tmpfs(base / "small", "8m") as mount:
            _final_status_on_a_full_disk(base, mount)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _final_status_on_a_full_disk(base: Path, mount: Path) -> None:
    daemon = DaemonProcess(mount / "home")
    try:
        daemon.start()
        fill = base / "fill"
        script = f"dd if=/dev/zero of={mount}/fill bs=64k >/dev/null 2>&1; sleep 0.2; exit 3"
        job_id = daemon.client.submit({"command": ["sh", "-c", script]})
        status_file = mount / "home" / "jobs" / str(job_id) / "run-1" / "status.json"
        wait_for(lambda: status_file.exists() and '"exited"' in status_file.read_text(), timeout_s=30)
        assert '"exit_code": 3' in status_file.read_text()
        (mount / "fill").unlink()  # space again: the daemon records what the shim kept
        job = daemon.wait_all([job_id], timeout_s=40)[job_id]
        assert job.exit_code == 3 and "died" not in str(job.reason), job
        assert not fill.exists()
    finally:
        finish(daemon)


def test_signals_reach_only_this_jobs_processes() -> None:
    """The shim's sweep of descendants never reaches outside its own tree (a sanity check of F2)."""
    from tuxai.executor.processes import descendants

    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in descendants(os.getpid())
        assert os.getpid() not in descendants(child.pid)
        assert 1 not in descendants(os.getpid())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
