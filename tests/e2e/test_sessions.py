"""Interactive sessions (``tuxai run``, ``tuxai attach``) typed into a real terminal (tmux) against a real daemon."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, finish
from tests.e2e.test_jobs_cli import cli
from tests.integration.test_identity import NOBODY, as_nobody, root_daemon  # noqa: F401 (a fixture)
from tuxai.model.session import SOCKET

BASH = "bash --norc --noprofile"


class Pane:
    """A tmux session of its own (its own server), ``width`` × ``height``, running ``command`` then a shell's wait."""

    def __init__(self, home: Path, command: str, width: int = 120, height: int = 40) -> None:
        self.socket_dir = Path(tempfile.mkdtemp(prefix="tuxai-tmux-"))  # a server of its own, removed after
        env = f"env TUXAI_HOME={shlex.quote(str(home))} PS1='sh$ ' TERM=xterm"
        tty = "echo \"tty: $(stty -a | grep -o -- '-\\?icanon')\""  # raw mode shows -icanon
        script = f"{env} {sys.executable} -m tuxai {command}; echo client-rc=$?; {tty}; sleep 600"
        argv = ["new-session", "-d", "-x", str(width), "-y", str(height), script]
        self._tmux(*argv)

    def _tmux(self, *args: str) -> str:
        argv = ["tmux", "-S", str(self.socket_dir / "tmux"), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def keys(self, *keys: str) -> None:
        """``tmux send-keys``: text, ``Enter``, ``C-c``…"""
        self._tmux("send-keys", *keys)

    def text(self) -> str:
        """What the pane shows now (and its scrollback)."""
        return self._tmux("capture-pane", "-p", "-S", "-100")

    def wait_for(self, pattern: str, timeout_s: float = 20.0) -> str:
        """The pane's text once ``pattern`` (a regular expression) shows in it."""
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.text()
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on the screen after {timeout_s} s:\n{text}")
            time.sleep(0.1)

    def resize(self, width: int, height: int) -> None:
        """Resize the window (the client gets SIGWINCH)."""
        self._tmux("resize-window", "-x", str(width), "-y", str(height))

    def client_pid(self) -> int:
        """The pid of the ``tuxai`` process the pane's shell runs."""
        shell = int(self._tmux("display-message", "-p", "#{pane_pid}").strip())
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def close(self) -> None:
        """Kill the tmux server and what runs in it."""
        subprocess.run(["tmux", "-S", str(self.socket_dir / "tmux"), "kill-server"], capture_output=True, timeout=10)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


@pytest.fixture
def panes() -> Iterator[list[Pane]]:
    """Panes a test opens; closed afterwards."""
    opened: list[Pane] = []
    yield opened
    for pane in opened:
        pane.close()


def _job_id(text: str) -> int:
    match = re.search(r"job (\d+): interactive session", text)
    assert match, text
    return int(match.group(1))


def test_pty_session_type_detach_reattach_exit(daemon: DaemonProcess, panes: list[Pane]) -> None:
    pane = Pane(daemon.home, f"run --pty -- {BASH}")
    panes.append(pane)
    job_id = _job_id(pane.wait_for(r"(?m)^sh\$"))
    pane.keys("echo hello-$((6*7)); tty", "Enter")
    pane.wait_for(r"hello-42\s+/dev/pts/")
    pane.keys("C-p", "C-q")  # detach
    text = pane.wait_for(r"client-rc=0\s+tty: icanon")  # the terminal is back as it was
    assert f"detached from job {job_id}" in text
    assert daemon.job(job_id).state == "running"
    row = next(line for line in cli(daemon.home, "ls").stdout.splitlines() if line.startswith(str(job_id)))
    assert "running" in row and "bash" in row

    again = Pane(daemon.home, f"attach {job_id}", width=100, height=30)
    panes.append(again)
    again.wait_for("hello-42")  # the earlier shell, shown again
    again.keys("stty size", "Enter")
    again.wait_for("30 100")  # the new client's window size
    again.resize(90, 25)
    time.sleep(0.3)
    again.keys("stty size; exit 7", "Enter")
    again.wait_for("25 90")  # and again on SIGWINCH
    again.wait_for(r"client-rc=7\s+tty: icanon")  # the client ends with the shell's status
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "failed" and job.exit_code == 7
    log = cli(daemon.home, "logs", str(job_id)).stdout
    assert "hello-42" in log and "30 100" in log and "25 90" in log  # everything also went to the log


def test_pending_session_says_why_and_ctrl_c_cancels_it(daemon: DaemonProcess, panes: list[Pane]) -> None:
    blocker = daemon.client.submit({"command": ["sleep", "60"], "gpus": 2, "grace": "1s"})
    deadline = time.monotonic() + 10
    while daemon.job(blocker).state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    pane = Pane(daemon.home, f"run --gpus 1 --pty -- {BASH}")
    panes.append(pane)
    text = pane.wait_for(r"job \d+: pending \(.+\)")
    job_id = _job_id(text)
    reason = daemon.job(job_id).reason
    assert reason and reason in text.replace("\n", "")
    pane.keys("C-c")
    text = pane.wait_for("client-rc=130")
    assert f"job {job_id}: cancelled while pending" in text
    assert daemon.job(job_id).state == "cancelled"
    assert daemon.job(blocker).state == "running"


def test_gpu_session_sees_its_gpu_and_relays_stdin(daemon: DaemonProcess) -> None:
    done = cli_with_input(
        daemon.home, "hi\n", "run", "--gpus", "1", "--", "sh", "-c", "cat; echo $CUDA_VISIBLE_DEVICES; exit 5"
    )
    assert done.returncode == 5, done.stderr
    job = daemon.client.jobs()[-1]
    assert len(job.gpus) == 1 and job.gpus[0] and job.gpus[0].startswith("GPU-")
    assert done.stdout == f"hi\n{job.gpus[0]}\n"  # stdin relayed; the job's one GPU, by UUID
    assert daemon.log(job.id) == done.stdout

    done = cli_with_input(
        daemon.home, "", "run", "--gpus", "1", "--pty", "--", "sh", "-c", "tty; echo $CUDA_VISIBLE_DEVICES"
    )
    job = daemon.client.jobs()[-1]
    assert done.returncode == 0, done.stderr
    terminal, gpu = done.stdout.splitlines()  # a pty ends its lines with \r\n
    assert terminal.startswith("/dev/pts/") and gpu == job.gpus[0]


def cli_with_input(home: Path, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``tuxai ARGS`` with ``stdin`` as its input."""
    env = {**os.environ, "TUXAI_HOME": str(home)}
    argv = [sys.executable, "-m", "tuxai", *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_attach_to_a_batch_job_is_one_clear_line(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit({"command": ["sleep", "30"], "grace": "1s"})
    done = cli(daemon.home, "attach", str(job_id))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and f"job {job_id} is a batch job" in done.stderr


def test_idle_session_is_flagged_and_never_cancelled_as_hung(tmp_path: Path) -> None:
    fast = ("--telemetry-period", "0.2", "--idle-after", "1", "--hung-after", "1.5", "--on-hung", "cancel")
    daemon = DaemonProcess(tmp_path / "home", extra=fast).start()
    try:
        session = daemon.client.submit({"command": BASH.split(), "session": "pty", "gpus": 1, "grace": "1s"})
        batch = daemon.client.submit({"command": ["sleep", "30"], "gpus": 1, "grace": "1s"})
        daemon.wait_all([batch], timeout_s=30)  # flagged hung and cancelled by the policy
        assert daemon.job(batch).state == "cancelled"
        time.sleep(1.0)  # the session has been "hung" (no progress at its prompt) as long as the batch job
        job = daemon.job(session)
        assert job.state == "running" and "idle" in job.flags, job
        row = next(line for line in cli(daemon.home, "ls").stdout.splitlines() if line.startswith(str(session)))
        assert "running [" in row and "idle" in row
    finally:
        finish(daemon)


def test_only_the_owner_and_root_reach_a_session(root_daemon: DaemonProcess) -> None:  # noqa: F811
    home = root_daemon.home
    mine = root_daemon.client.submit({"command": ["sleep", "30"], "session": "pty", "grace": "1s"})
    spec = {"command": ["sh", "-c", "read x; echo got $x"], "session": "pty", "workdir": "/tmp"}
    code, answer = as_nobody(home, "POST", "/v1/jobs", {"spec": spec})
    assert code == 201, answer
    theirs = answer["id"]  # type: ignore[index]
    sockets = {job: home / "jobs" / str(job) / SOCKET for job in (mine, theirs)}
    deadline = time.monotonic() + 15
    while not all(p.exists() for p in sockets.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for job, uid in ((mine, 0), (theirs, NOBODY)):
        info = sockets[job].lstat()
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == uid

    assert "PermissionError" in _connect_as_nobody(sockets[mine])  # the socket's mode keeps nobody out
    assert _connect_as_nobody(sockets[theirs]).startswith("connected")  # their own session: theirs to attach
    sockets[mine].chmod(0o666)  # were the mode ever wrong, the shim's peer check still refuses
    assert "only the job's owner and root can attach" in _connect_as_nobody(sockets[mine])
    done = cli_with_input(home, "hi\n", "attach", str(theirs))  # root may attach to anyone's session
    assert done.returncode == 0 and "got hi" in done.stdout, done.stderr
    done = cli(home, "attach", str(theirs))
    assert done.returncode == 0 and f"job {theirs} has ended (succeeded)" in done.stderr


def _connect_as_nobody(path: Path) -> str:
    """Connect to ``path`` as uid 65534 (the system's python: ours lives under /root), read for a moment."""
    script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect(sys.argv[1])\nexcept OSError as e:\n    print(type(e).__name__); sys.exit()\n"
        "s.settimeout(1)\n"
        "try:\n    data = s.recv(4096)\nexcept OSError:\n    data = b''\n"
        "print('connected', data)\n"
    )
    done = subprocess.run(
        ["/usr/bin/python3", "-c", script, str(path)], capture_output=True, text=True, cwd="/tmp",
        user=NOBODY, group=NOBODY, extra_groups=[], timeout=30, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_killed_client_restores_the_terminal_and_another_takes_over(daemon: DaemonProcess, panes: list[Pane]) -> None:
    first = Pane(daemon.home, f"run --pty -- {BASH}")
    panes.append(first)
    job_id = _job_id(first.wait_for(r"(?m)^sh\$"))
    second = Pane(daemon.home, f"attach {job_id}")
    panes.append(second)
    second.wait_for(r"(?m)^sh\$")
    text = first.wait_for(r"client-rc=0\s+tty: icanon")  # taken over: told so, its terminal restored
    assert f"detached from job {job_id}: attached from elsewhere" in text
    os.kill(second.client_pid(), signal.SIGTERM)
    second.wait_for(r"client-rc=130\s+tty: icanon")  # killed while raw: the terminal restored all the same
    assert daemon.job(job_id).state == "running"  # the session goes on
    third = Pane(daemon.home, f"attach {job_id}")
    panes.append(third)
    third.wait_for(r"(?m)^sh\$")
    third.keys("kill -9 $$", "Enter")
    third.wait_for(r"client-rc=137\s+tty: icanon")
    job = daemon.wait_all([job_id])[job_id]
    assert job.state == "failed" and job.signal == 9


def test_session_outlives_a_daemon_restart_and_shows_in_show(daemon: DaemonProcess) -> None:
    script = "read line; echo got $line; exit 3"
    job_id = daemon.client.submit({"command": ["sh", "-c", script], "session": "pipe"})
    socket_path = daemon.home / "jobs" / str(job_id) / SOCKET
    deadline = time.monotonic() + 15
    while not socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "interactive session (pipe)" in cli(daemon.home, "show", str(job_id)).stdout
    daemon.kill9()
    daemon.start()  # adopts the running shim; the session never noticed
    done = cli_with_input(daemon.home, "hello\n", "attach", str(job_id))
    assert done.returncode == 3 and done.stdout == "got hello\n", done.stderr
    job = daemon.wait_all([job_id])[job_id]
    assert job.exit_code == 3


def test_cancelled_shell_ends_at_once_not_after_its_grace(daemon: DaemonProcess) -> None:
    job_id = daemon.client.submit({"command": BASH.split(), "session": "pty", "grace": "60s"})
    deadline = time.monotonic() + 15
    while not (daemon.home / "jobs" / str(job_id) / SOCKET).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # bash at its prompt: it ignores SIGTERM, as an interactive shell does
    started = time.monotonic()
    assert cli(daemon.home, "cancel", str(job_id)).returncode == 0
    job = daemon.wait_all([job_id], timeout_s=30)[job_id]
    assert job.state == "cancelled" and time.monotonic() - started < 10  # SIGHUP first: not 60 s of grace


def test_without_pty_ctrl_c_is_the_jobs_sigint(daemon: DaemonProcess, panes: list[Pane]) -> None:
    script = "trap 'echo got INT; exit 9' INT; echo ready; while :; do sleep 0.1; done"
    pane = Pane(daemon.home, f"run -- sh -c {shlex.quote(script)}")
    panes.append(pane)
    job_id = _job_id(pane.wait_for("ready"))
    pane.keys("C-c")
    assert "got INT" in pane.wait_for(r"client-rc=9\s+tty: icanon")  # srun's way: the job's, not ours
    assert daemon.wait_all([job_id])[job_id].exit_code == 9


def test_a_closed_stdout_ends_the_job_as_a_pipe_would(daemon: DaemonProcess) -> None:
    env = {**os.environ, "TUXAI_HOME": str(daemon.home)}
    line = f"{shlex.quote(sys.executable)} -m tuxai run -- yes | head -2"
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.stdout == "y\ny\n", done.stderr
    job = daemon.client.jobs(["running", "failed", "succeeded"])[-1]
    job = daemon.wait_all([job.id], timeout_s=15)[job.id]  # not left running, writing its log forever
    assert job.signal == signal.SIGPIPE


def test_a_slow_reader_gets_every_byte(daemon: DaemonProcess) -> None:
    env = {**os.environ, "TUXAI_HOME": str(daemon.home)}
    line = f"{shlex.quote(sys.executable)} -m tuxai run -- head -c 30000000 /dev/zero | (sleep 1; wc -c)"
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.stdout.strip() == "30000000", done.stderr  # the job waited for the reader; nothing dropped


def test_a_dropped_terminal_leaves_the_session_running(daemon: DaemonProcess, panes: list[Pane]) -> None:
    first = Pane(daemon.home, f"run --pty -- {BASH}")
    panes.append(first)
    job_id = _job_id(first.wait_for(r"(?m)^sh\$"))
    first.keys("echo before-$((1+1))", "Enter")
    first.wait_for("before-2")
    first.close()  # the terminal goes away under the client (a dropped ssh): SIGHUP, EIO
    time.sleep(0.5)
    assert daemon.job(job_id).state == "running"
    again = Pane(daemon.home, f"attach {job_id}")
    panes.append(again)
    again.wait_for("before-2")
    again.keys("exit", "Enter")
    again.wait_for(r"client-rc=0\s+tty: icanon")


def test_a_session_runs_in_its_own_cgroup(daemon: DaemonProcess) -> None:
    if not daemon.client.health().cgroups:
        pytest.skip("this host gives jobs no cgroups (tuxai doctor says why)")
    done = cli_with_input(daemon.home, "", "run", "--mem", "64MiB", "--", "cat", "/proc/self/cgroup")
    assert done.returncode == 0, done.stderr
    job = daemon.client.jobs()[-1]
    groups = [line for line in done.stdout.splitlines() if f"-job-{job.id}-1" in line]
    assert any(":memory:" in line or line.startswith("0::") for line in groups), done.stdout  # its memory limit's
    assert daemon.job(job.id).spec.request.memory_bytes == 64 * 2**20
