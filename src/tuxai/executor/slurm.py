"""The Slurm backend: each attempt is one ``sbatch`` job, submitted as the job's own user.

It answers the seam every backend answers (``executor.attempt``). ``prepare`` makes the
attempt's directory and submits the batch script (``model.slurm``) *held*, as the job's user
(``sbatch`` run with the user's uid, gid and groups: never root's job for a user); the handle
is ``slurm:<slurm job id>:<run directory>``. ``start`` releases it (``scontrol release``): the
release is the claim, so an attempt the daemon gave up while it was still held is cancelled
and never runs. Slurm then schedules it; ``srun`` runs tuxai's shim on every node
(``executor.slurm_node``), which records each node's status in the run directory.

    <job dir>/run-<attempt>/        root's, 0755
        launch.json                 the user's: what every node runs (the node runner reads it)
        stop.json                   a stop asked (readable by the nodes)
        released                    the daemon released the held job
        node-<rank>/                the user's, 0700: run-<restart>/ (the shim's run directory), slurm.out

``observe`` reads ``squeue --json`` (one call a second, however many jobs) and, once Slurm
says the job ended, the nodes' statuses (without following links: the user owns them); a job
Slurm no longer lists is judged from those alone (``sacct`` needs accounting storage, which a
small cluster often lacks).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path

from tuxai.errors import UsageError
from tuxai.executor.attempt import AttemptHandle, AttemptTaken, Observed, Processes, Seen
from tuxai.executor.files import make_dir, open_user_file, read_user_file
from tuxai.executor.rundir import CHECKPOINT, ENDPOINT, STOP, Launch, Phase, Status, rank_output, write_stop
from tuxai.model.job import JobSpec, JobState, StopReason
from tuxai.model.launch import gang_of, node_environment
from tuxai.model.slurm import (
    SlurmJob,
    batch_script,
    job_state,
    parse_sbatch_id,
    parse_squeue_json,
    pending_words,
    refusal_line,
    sbatch_args,
)

BASE = "launch.json"
RELEASED = "released"
HELD = ("JobHeldUser", "JobHeldAdmin")
QUEUE_TTL_S = 1.0  # one squeue a second at most, however many jobs are observed
COMMAND_TIMEOUT_S = 30.0
MAX_STATUS_BYTES = 65536
User = tuple[int, int, tuple[int, ...]]


def handle_of(slurm_id: int, run_dir: Path) -> AttemptHandle:
    """The attempt's handle: ``slurm:42:/var/lib/tuxai/jobs/7/run-1``."""
    return AttemptHandle(f"slurm:{slurm_id}:{run_dir}")


def parse_handle(handle: AttemptHandle) -> tuple[int, Path]:
    """``slurm:42:/x/run-1`` → (42, Path('/x/run-1')).

    Raises:
        ValueError: not a Slurm handle.
    """
    kind, _, rest = handle.partition(":")
    number, _, path = rest.partition(":")
    if kind != "slurm" or not number.isdecimal() or not path:
        raise ValueError(f"{handle!r} is not a Slurm attempt handle")
    return int(number), Path(path)


def gang_status(statuses: list[Status], nodes: int, slurm: SlurmJob | None, stop: StopReason | None) -> Status:
    """The attempt's one status from its nodes' (those that wrote one) and Slurm's last word.

    The first node that failed decides; else rank 0's when every node succeeded; else (nodes
    killed before they could write) Slurm's own exit status and state.
    """
    failed = [s for s in statuses if s.error or s.signal is not None or s.exit_code not in (0, None) or s.oom_killed]
    ended = max((s.ended_at or 0.0 for s in statuses), default=0.0) or None
    stop = next((s.stop_reason for s in statuses if s.stop_reason), None) or stop
    timed_out = slurm is not None and job_state(slurm.state) is JobState.TIMEOUT
    if failed:
        chosen = min(failed, key=lambda s: s.ended_at or 0.0)
    elif len(statuses) == nodes and statuses:
        chosen = statuses[0]
    else:
        where = f"Slurm ended it {slurm.state} ({slurm.reason})" if slurm else "Slurm no longer knows it"
        error = "" if stop or timed_out else f"{where}: {len(statuses)} of {nodes} node(s) recorded an exit"
        code = slurm.exit_code if slurm and not error else None
        chosen = Status(Phase.EXITED, 0, exit_code=code, signal=slurm.signal if slurm else None, error=error)
    return replace(chosen, ended_at=ended or chosen.ended_at or time.time(), stop_reason=stop, timed_out=timed_out)


class SlurmExecutor:
    """Attempts as Slurm jobs. ``spec_of(job_id)``: the job's spec (the store's), for sbatch's arguments."""

    def __init__(
        self,
        spec_of: Callable[[int], JobSpec],
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        gres: bool = False,
    ) -> None:
        """``env``: the Slurm commands' environment (``SLURM_CONF``, ``PATH``); ``gres``: ask ``--gres=gpu:N``."""
        self.spec_of, self.python, self.gres = spec_of, python, gres
        self.env = dict(os.environ if env is None else env)
        self._queue: tuple[float, dict[int, SlurmJob] | None] = (0.0, None)
        self._lock = threading.Lock()

    # ---- Slurm's commands ---------------------------------------------------------------

    def _run(self, argv: list[str], user: User | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run a Slurm command; as ``user`` (uid, gid, groups) when root runs it for somebody else."""
        as_user = user if user is not None and os.getuid() == 0 and user[0] != os.getuid() else None
        return subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd="/",
            timeout=COMMAND_TIMEOUT_S,
            check=False,
            user=as_user[0] if as_user else None,
            group=as_user[1] if as_user else None,
            extra_groups=list(as_user[2]) if as_user else None,
        )

    def queue(self) -> dict[int, SlurmJob] | None:
        """Slurm's jobs by id (``squeue --json``, at most once a second); None when squeue cannot answer."""
        with self._lock:
            at, jobs = self._queue
            if jobs is not None and time.monotonic() - at < QUEUE_TTL_S:
                return jobs
            try:
                jobs = parse_squeue_json(self._run(["squeue", "--json"]).stdout)
            except (OSError, ValueError, subprocess.SubprocessError):
                jobs = None
            self._queue = (time.monotonic(), jobs)
            return jobs

    def _forget_queue(self) -> None:
        with self._lock:
            self._queue = (0.0, None)

    def test(self, spec: JobSpec, user: User) -> None:
        """Ask Slurm whether it would ever run ``spec`` for ``user`` (``sbatch --test-only``).

        Raises:
            UsageError: Slurm's refusal, in one line; or a field Slurm cannot be asked.
        """
        args = [a for a in sbatch_args(spec, "tuxai-test", "/dev/null", "/", gres=self.gres) if a != "--hold"]
        done = self._run(["sbatch", "--test-only", *args[1:]], user, "#!/bin/sh\ntrue\n")
        if done.returncode != 0:
            raise UsageError(
                f"Slurm refuses the job: {refusal_line(done.stderr)}", hint="ask for what the cluster has (sinfo)"
            )

    # ---- the seam -------------------------------------------------------------------------

    def prepare(self, launch: Launch) -> AttemptHandle:
        """Make the attempt's directory and files, then submit the job held, as its user.

        Raises:
            AttemptTaken: the run directory exists (never reused).
            ValueError: the launch names no job directory.
        """
        if not launch.job_dir:
            raise ValueError(f"job {launch.job_id}: the launch names no job directory")
        spec = self.spec_of(launch.job_id)
        run_dir = Path(launch.job_dir) / f"run-{launch.attempt}"
        try:
            make_dir(run_dir, 0o755, exclusive=True)
        except FileExistsError as exc:
            raise AttemptTaken(f"{run_dir} exists: an attempt directory is never reused") from exc
        user = launch.user if launch.user is not None and os.getuid() == 0 else None
        owner = (user[0], user[1]) if user else None
        job_dir = Path(launch.job_dir)
        make_dir(job_dir / CHECKPOINT, 0o700, owner)
        logs = [Path(launch.log_path).with_name(rank_output(rank)) for rank in range(spec.nodes)]  # one a node
        for path in (*logs, job_dir / ENDPOINT):
            os.close(open_user_file(path, owner))
        for rank in range(spec.nodes):
            make_dir(run_dir / f"node-{rank}", 0o700, owner, exclusive=True)
        self._write_base(run_dir, launch, spec, owner)
        name = f"tuxai-{launch.job_id}.{launch.attempt}"
        output = str(run_dir / "node-0" / "slurm.out")
        try:
            args = sbatch_args(spec, name, output, launch.cwd or "/", gres=self.gres)
        except UsageError as exc:
            return self._refused(run_dir, exc.message)
        done = self._run(
            ["sbatch", *args], user, batch_script(self.python, str(run_dir), (launch.job_id, launch.attempt))
        )
        try:
            slurm_id = parse_sbatch_id(done.stdout) if done.returncode == 0 else 0
        except ValueError:
            slurm_id = 0
        if not slurm_id:
            return self._refused(run_dir, refusal_line(done.stderr or done.stdout))
        self._forget_queue()
        return handle_of(slurm_id, run_dir)

    def _write_base(self, run_dir: Path, launch: Launch, spec: JobSpec, owner: tuple[int, int] | None) -> None:
        """launch.json for the node runner, the user's own (0600): the job's environment without
        the one-node launch contract the daemon computed (each node computes its own)."""
        contract = node_environment(gang_of(1, 0, spec.launcher), ("127.0.0.1",), 1, 0, 0, 0) if spec.launcher else {}
        env = {k: v for k, v in launch.env.items() if k not in contract}
        base = {
            **asdict(replace(launch, env=env, command=spec.command, user=None, cpus=(), devices=())),
            "cgroup": {},
            "gang": {
                "nodes": spec.nodes,
                "gpus_per_node": spec.request.gpus,
                "procs_per_node": spec.procs_per_node,
                "launcher": spec.launcher.value if spec.launcher else "",
            },
        }
        fd = open_user_file(run_dir / BASE, owner, fresh=True)
        with os.fdopen(fd, "w") as handle:
            json.dump(base, handle)

    def _refused(self, run_dir: Path, why: str) -> AttemptHandle:
        from tuxai.executor.rundir import write_status

        write_status(run_dir, Status(Phase.EXITED, 0, ended_at=time.time(), error=f"Slurm refused it: {why}"))
        return handle_of(0, run_dir)

    def start(self, handle: AttemptHandle) -> None:
        """Release the held job: Slurm schedules it from now on."""
        slurm_id, run_dir = parse_handle(handle)
        if slurm_id and not (run_dir / STOP).exists():
            self._run(["scontrol", "release", str(slurm_id)])
            with contextlib.suppress(FileExistsError):
                os.close(os.open(run_dir / RELEASED, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644))
            self._forget_queue()

    def stop(self, handle: AttemptHandle, reason: StopReason) -> None:
        """Record the stop for every node, then: a queued job is cancelled; a running one gets SIGTERM
        on every node (each shim: the job's grace, then SIGKILL)."""
        slurm_id, run_dir = parse_handle(handle)
        write_stop(run_dir, reason)
        os.chmod(run_dir / STOP, 0o644)
        for node in sorted(run_dir.glob("node-*/run-*")):
            with contextlib.suppress(OSError):
                write_stop(node, reason)  # the shim reads it when SIGTERM comes
        if not slurm_id:
            return
        job = (self.queue() or {}).get(slurm_id)
        if job is not None and job_state(job.state) is JobState.PENDING:
            self._run(["scancel", str(slurm_id)])
        else:
            self._run(["scancel", "--signal=TERM", f"{slurm_id}.0"])  # the step: srun's tasks, one per node
        self._forget_queue()

    def _statuses(self, run_dir: Path, nodes: int) -> list[Status]:
        statuses = []
        for rank in range(nodes):
            runs = sorted(run_dir.glob(f"node-{rank}/run-*"), key=lambda p: int(p.name[4:] or 0))
            status = _read_status(runs[-1]) if runs else None  # the user's files: no link followed
            if status is not None and status.phase is Phase.EXITED:
                statuses.append(status)
        return statuses

    def observe(self, handle: AttemptHandle) -> Observed:
        """Queued or running in Slurm: ALIVE (held and never released: NOT_STARTED); ended: its status."""
        slurm_id, run_dir = parse_handle(handle)
        if not run_dir.is_dir():
            return Observed(Seen.VANISHED, None)
        if not slurm_id:
            from tuxai.executor.rundir import read_status

            return Observed(Seen.EXITED, read_status(run_dir))
        queue = self.queue()
        if queue is None:
            return Observed(Seen.ALIVE, None)  # squeue does not answer: nothing is known to have ended
        job = queue.get(slurm_id)
        if job is not None and not job_state(job.state).terminal:
            held = job.state == "PENDING" and job.reason in HELD and not (run_dir / RELEASED).exists()
            return Observed(Seen.NOT_STARTED if held else Seen.ALIVE, None)
        nodes = len(list(run_dir.glob("node-*")))
        statuses = self._statuses(run_dir, nodes)
        if job is None and not statuses:
            return Observed(Seen.LOST, None)
        stop = None
        with contextlib.suppress(OSError, ValueError):
            stop = StopReason.parse(json.loads((run_dir / STOP).read_text()).get("reason"))
        return Observed(Seen.EXITED, gang_status(statuses, nodes, job, stop))

    def waiting(self, handle: AttemptHandle) -> str | None:
        """Why Slurm keeps a released job queued, in words (None: it runs, ended, or is not Slurm's)."""
        try:
            slurm_id, _ = parse_handle(handle)
        except ValueError:
            return None
        job = (self.queue() or {}).get(slurm_id)
        if job is None or job.state != "PENDING":
            return None
        return f"queued in Slurm (job {slurm_id}): {pending_words(job.reason)}"

    def abandon(self, handle: AttemptHandle) -> bool:
        """Cancel a job still held (never released): it never runs. False once Slurm may run it."""
        slurm_id, run_dir = parse_handle(handle)
        if not slurm_id or (run_dir / RELEASED).exists():
            return not slurm_id
        job = (self.queue() or {}).get(slurm_id)
        if job is not None and not (job.state == "PENDING" and job.reason in HELD):
            return False
        self._run(["scancel", str(slurm_id)])
        self._forget_queue()
        return True

    def kill_lost(self, handle: AttemptHandle) -> None:
        """Cancel what Slurm may still run of the attempt (Slurm kills every step on every node)."""
        slurm_id, _ = parse_handle(handle)
        if slurm_id:
            self._run(["scancel", "--full", "--signal=KILL", str(slurm_id)])
            self._run(["scancel", str(slurm_id)])

    def processes(self, handle: AttemptHandle) -> Processes | None:
        """None: the job's processes are on Slurm's nodes, not this daemon's."""
        return None

    def close(self) -> None:
        """Nothing held: jobs stay with Slurm."""


def _read_status(run_dir: Path) -> Status | None:
    """A node's status.json, which its user owns: read without following a link, capped."""
    try:
        owners = (os.lstat(run_dir).st_uid, os.geteuid())
    except OSError:
        return None
    raw = read_user_file(run_dir / "status.json", owners, MAX_STATUS_BYTES)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Status(
            **{**data, "phase": Phase(data["phase"]), "stop_reason": StopReason.parse(data.get("stop_reason"))}
        )
    except (TypeError, ValueError, KeyError):
        return None
