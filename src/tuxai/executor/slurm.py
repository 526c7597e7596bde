"""The Slurm backend: each attempt is one ``sbatch`` job, submitted as the job's own user.

It answers the seam every backend answers (``executor.attempt``). ``prepare`` makes the
attempt's directory (its handle: ``slurm:<run directory>``) with what ``sbatch`` will be given;
``start`` claims the attempt (``claimed``, made once) and submits the batch script
(``model.slurm``) as the job's user (``sbatch`` run with the user's uid, gid and groups: never
root's job for a user), then records Slurm's job id. ``abandon`` takes the same claim, so an
attempt given up is never submitted. Slurm schedules it; ``srun`` runs tuxai's shim on every
node (``executor.slurm_node``), which records each node's status in the run directory.

    <job dir>/run-<attempt>/        root's, 0755
        sbatch.json                 root's: the arguments, the script, the user
        claimed                     made once: by start (then sbatch) or by abandon
        slurm-id                    Slurm's job id, once sbatch answered
        status.json                 root's: the attempt's end when Slurm never ran it (refused, stopped first)
        launch.json                 the user's: what every node runs (the node runner reads it)
        stop.json                   a stop asked (readable by the nodes: each node's stop.json links here)
        node-<rank>/                the user's, 0700: run-<restart>/ (the shim's run directory), slurm.out

Root writes only in the run directory itself; what is under ``node-<rank>/`` is the user's, read
without following a link and type-checked (a malformed file is no status, never an error).

A daemon that died between the claim and the record finds its job again by name
(``tuxai-<job>.<attempt>-<tag of the run directory>``). ``observe`` reads ``squeue --json`` (one
call a second, however many jobs) and, once Slurm says the job ended, the nodes' statuses
(without following links: the user owns them); a job Slurm no longer lists is judged from those
alone (``sacct`` needs accounting storage, which a small cluster often lacks).
"""

from __future__ import annotations

import contextlib
import hashlib
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
from tuxai.executor.files import make_dir, open_user_file
from tuxai.executor.rundir import (
    CHECKPOINT,
    ENDPOINT,
    STATUS,
    STOP,
    Launch,
    Phase,
    Status,
    rank_output,
    read_status,
    read_stop,
    write_atomic,
    write_status,
    write_stop,
)
from tuxai.executor.slurm_status import node_statuses
from tuxai.model.job import JobSpec, JobState, StopReason
from tuxai.model.launch import gang_of, node_environment
from tuxai.model.slurm import (
    SlurmJob,
    batch_script,
    job_state,
    parse_sbatch_id,
    parse_squeue_json,
    refusal_line,
    sbatch_args,
)

BASE = "launch.json"
SBATCH = "sbatch.json"
CLAIMED = "claimed"
SLURM_ID = "slurm-id"
QUEUE_TTL_S = 1.0  # one squeue a second at most, however many jobs are observed
COMMAND_TIMEOUT_S = 30.0
User = tuple[int, int, tuple[int, ...]]


def handle_of(run_dir: Path) -> AttemptHandle:
    """The attempt's handle: ``slurm:/var/lib/tuxai/jobs/7/run-1``."""
    return AttemptHandle(f"slurm:{run_dir}")


def parse_handle(handle: AttemptHandle) -> Path:
    """``slurm:/x/run-1`` → Path('/x/run-1').

    Raises:
        ValueError: not a Slurm handle.
    """
    kind, _, path = handle.partition(":")
    if kind != "slurm" or not path.startswith("/"):
        raise ValueError(f"{handle!r} is not a Slurm attempt handle")
    return Path(path)


def job_name(run_dir: Path) -> str:
    """The Slurm job's name: the tuxai job and attempt, and a tag of where its files are (two daemons never share one).

    >>> job_name(Path("/var/lib/tuxai/jobs/12/run-2"))
    'tuxai-12.2-6284f8d1'
    """
    tag = hashlib.sha256(str(run_dir).encode()).hexdigest()[:8]
    return f"tuxai-{run_dir.parent.name}.{run_dir.name.removeprefix('run-')}-{tag}"


def slurm_id(run_dir: Path) -> int | None:
    """The Slurm job id ``start`` recorded, if any."""
    with contextlib.suppress(OSError, ValueError):
        return int((run_dir / SLURM_ID).read_text())
    return None


def _create(path: Path, text: str = "") -> bool:
    """Create ``path`` once (O_EXCL, root's, 0644); True for the one caller that did."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return True


def gang_status(statuses: list[Status], nodes: int, slurm: SlurmJob | None, stop: StopReason | None) -> Status:
    """The attempt's one status from its nodes' (those that wrote one) and Slurm's last word.

    The first node that failed decides; else rank 0's when every node succeeded; else (nodes
    killed before they could write) Slurm's own exit status and state.
    """
    failed = [s for s in statuses if s.error or s.signal is not None or s.exit_code not in (0, None) or s.oom_killed]
    ended = max((s.ended_at or 0.0 for s in statuses), default=0.0) or None
    stop = stop or next((s.stop_reason for s in statuses if s.stop_reason), None)  # the daemon's own first
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
        args = sbatch_args(spec, "tuxai-test", "/dev/null", "/", gres=self.gres)
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
        output = str(run_dir / "node-0" / "slurm.out")
        try:
            args = sbatch_args(spec, job_name(run_dir), output, launch.cwd or "/", gres=self.gres)
        except UsageError as exc:
            self._ended(run_dir, f"Slurm refused it: {exc.message}")
            return handle_of(run_dir)
        script = batch_script(self.python, str(run_dir), (launch.job_id, launch.attempt), spec.nodes)
        write_atomic(run_dir / SBATCH, {"args": args, "script": script, "user": user})
        return handle_of(run_dir)

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

    def _ended(self, run_dir: Path, error: str = "", stop: StopReason | None = None) -> None:
        """The attempt's end when Slurm never ran it: refused, or stopped before its start."""
        write_status(run_dir, Status(Phase.EXITED, 0, ended_at=time.time(), error=error, stop_reason=stop))

    def _job(self, run_dir: Path) -> tuple[int | None, SlurmJob | None]:
        """The attempt's Slurm id and job (None when Slurm does not list it); by name when no id was recorded."""
        queue = self.queue() or {}
        number = slurm_id(run_dir)
        if number is None:  # adopted by name only from the attempt's own user: anybody can name a job so
            name, uid = job_name(run_dir), _submitter(run_dir)
            number = next((j.job_id for j in queue.values() if j.name == name and j.user_id == uid), None)
            if number is not None:
                write_atomic_text(run_dir / SLURM_ID, str(number))  # the daemon died before it wrote it
        return number, queue.get(number) if number is not None else None

    def start(self, handle: AttemptHandle) -> None:
        """Claim the attempt and submit it as its user (unless a stop came first); record Slurm's id."""
        run_dir = parse_handle(handle)
        if (run_dir / STATUS).exists() or not _create(run_dir / CLAIMED, "start"):
            return  # refused at prepare, or given up
        stop = read_stop(run_dir)
        if stop is not None:
            self._ended(run_dir, stop=stop)
            return
        plan = json.loads((run_dir / SBATCH).read_text())
        user = None if plan["user"] is None else (plan["user"][0], plan["user"][1], tuple(plan["user"][2]))
        done = self._run(["sbatch", *plan["args"]], user, plan["script"])
        try:
            number = parse_sbatch_id(done.stdout) if done.returncode == 0 else 0
        except ValueError:
            number = 0
        if not number:
            self._ended(run_dir, f"Slurm refused it: {refusal_line(done.stderr or done.stdout)}")
            return
        write_atomic_text(run_dir / SLURM_ID, str(number))
        self._forget_queue()

    def stop(self, handle: AttemptHandle, reason: StopReason) -> None:
        """Record the stop for every node, then: a queued job is cancelled; a running one gets SIGTERM
        on every node (each shim: the job's grace, then SIGKILL). Before the start: it never starts."""
        run_dir = parse_handle(handle)
        write_stop(run_dir, reason)  # only here: each node's stop.json is a link to it (slurm_node)
        os.chmod(run_dir / STOP, 0o644)
        number, job = self._job(run_dir)
        if number is None:
            return  # not submitted: start reads stop.json first
        if job is not None and job_state(job.state) is JobState.PENDING:
            self._run(["scancel", str(number)])
        elif len(list(run_dir.glob("node-*"))) == 1:
            self._run(["scancel", "--batch", "--signal=TERM", str(number)])  # the batch shell is the node runner
        else:
            self._run(["scancel", "--signal=TERM", f"{number}.0"])  # the step: srun's tasks, one per node
        self._forget_queue()

    def observe(self, handle: AttemptHandle) -> Observed:
        """Not claimed: NOT_STARTED; queued in Slurm: QUEUED; running there: ALIVE; ended: its status."""
        run_dir = parse_handle(handle)
        if not run_dir.is_dir():
            return Observed(Seen.VANISHED, None)
        ended = read_status(run_dir)
        if ended is not None:
            return Observed(Seen.EXITED, ended)  # Slurm never ran it
        if not (run_dir / CLAIMED).exists():
            return Observed(Seen.NOT_STARTED, None)
        if self.queue() is None:
            return Observed(Seen.ALIVE, None)  # squeue does not answer: nothing is known to have ended
        _, job = self._job(run_dir)
        if job is not None and not job_state(job.state).terminal:
            return Observed(Seen.QUEUED if job_state(job.state) is JobState.PENDING else Seen.ALIVE, None)
        nodes = len(list(run_dir.glob("node-*")))
        statuses = node_statuses(run_dir, nodes)
        if job is None and not statuses:
            return Observed(Seen.LOST, None)  # claimed, and Slurm has no job of it (any more)
        status = gang_status(statuses, nodes, job, read_stop(run_dir))
        if job is not None and job.end_time is not None:
            status = replace(status, ended_at=job.end_time)  # Slurm's clock, not the user's status.json
        return Observed(Seen.EXITED, status)

    def engine_job(self, handle: AttemptHandle) -> SlurmJob | None:
        """The attempt's job as ``squeue`` lists it now (None: not submitted, no longer listed, or not Slurm's)."""
        try:
            return self._job(parse_handle(handle))[1]
        except ValueError:
            return None

    def abandon(self, handle: AttemptHandle) -> bool:
        """Claim a never-started attempt for the daemon: ``start`` then submits nothing."""
        run_dir = parse_handle(handle)
        if not run_dir.is_dir() or _create(run_dir / CLAIMED, "abandoned"):
            return True
        with contextlib.suppress(OSError):
            return (run_dir / CLAIMED).read_text() == "abandoned"  # given up before: still nothing to start
        return False

    def kill_lost(self, handle: AttemptHandle) -> None:
        """Cancel what Slurm may still run of the attempt (Slurm kills every step on every node)."""
        number, _ = self._job(parse_handle(handle))
        if number is not None:
            self._run(["scancel", str(number)])

    def processes(self, handle: AttemptHandle) -> Processes | None:
        """None: the job's processes are on Slurm's nodes, not this daemon's."""
        return None

    def close(self) -> None:
        """Nothing held: jobs stay with Slurm."""


def _submitter(run_dir: Path) -> int:
    """The uid ``start`` submits the attempt as (sbatch.json's user; none there: this process's own)."""
    with contextlib.suppress(OSError, ValueError, TypeError, IndexError, KeyError):
        user = json.loads((run_dir / SBATCH).read_text())["user"]
        if user is not None:
            return int(user[0])
    return os.getuid()


def write_atomic_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename (root's, 0644)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
