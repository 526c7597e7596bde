"""The daemon in front of a Slurm cluster (``tuxai up --slurm``): Slurm schedules, tuxai submits,
observes, stops and says why a job waits.

At submit, Slurm itself judges the job (``sbatch --test-only``, as the user): what it can never
run is refused in one line, with Slurm's words. A job whose tuxai gates are closed (held,
``--after``, an array's cap, a retry's backoff) waits in tuxai with tuxai's reason and never
reaches sbatch. Once they open it goes to Slurm at the next pass, as its own user
(``executor.slurm``), and stays *pending* in tuxai's store while Slurm keeps it queued
(``daemon.engine_queue``: it keeps its attempt), its reason Slurm's pending reason in words
(``queued in Slurm (job 42): …``). It is *running* from the pass that sees Slurm start it, with
Slurm's ``start_time`` as its ``started_at`` (its queue time and its GPU time are Slurm's) and
Slurm's placement as its allocation: each node, in rank order, with the GPUs Slurm gave it there.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tuxai.daemon.arrays import gate
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.daemon.engine_queue import ENGINE_QUEUE, engine_queued
from tuxai.daemon.gang import check_gang
from tuxai.daemon.image_store import check_image_present
from tuxai.daemon.jobdirs import new_job_dir
from tuxai.daemon.launch import prepare_attempt
from tuxai.daemon.outcome import within
from tuxai.daemon.reasons import waiting_reasons
from tuxai.errors import UsageError
from tuxai.executor.attempt import AttemptHandle, Observed, Seen
from tuxai.executor.rundir import OUTPUT
from tuxai.executor.slurm import SlurmExecutor
from tuxai.model.job import JobRecord, JobSpec, JobState, StopReason
from tuxai.model.resources import Allocation, GpuShare
from tuxai.model.slurm import CLUSTER_NODE, SlurmJob, pending_words
from tuxai.scheduler.decisions import Start
from tuxai.store.jobs import Store

SLURM_NODE = CLUSTER_NODE  # Slurm's jobs: their nodes and GPUs under ``more``, none of this machine's
QUEUED = "queued in Slurm"
log = logging.getLogger("tuxai.daemon")


def queued_words(job: SlurmJob | None) -> str:
    """Why Slurm keeps a job queued, as tuxai's reason ("" when Slurm does not keep it queued).

    >>> queued_words(SlurmJob(42, "PENDING", "Resources"))
    'queued in Slurm (job 42): the nodes, GPUs or memory it asks for are in use (Slurm: Resources)'
    """
    if job is None or job.state != "PENDING":
        return ""
    return f"{QUEUED} (job {job.job_id}): {pending_words(job.reason)}"


def slurm_placement(job: SlurmJob | None) -> Allocation:
    """Where Slurm runs a job: node ``slurm`` (none of this machine's GPUs) with each of its nodes, in rank
    order, and the GPU indices Slurm gave it there, under ``more``.

    >>> [(a.node, [g.index for g in a.gpus]) for a in slurm_placement(SlurmJob(1, "RUNNING", "None",
    ...     placement=(("n1", (0, 1)), ("n2", (1,))))).more]
    [('n1', [0, 1]), ('n2', [1])]
    """
    ranks = tuple(
        Allocation(node, tuple(GpuShare(i, None) for i in gpus)) for node, gpus in (job.placement if job else ())
    )
    return Allocation(SLURM_NODE, more=ranks)


class SlurmDaemon(Daemon):
    """A ``Daemon`` whose jobs Slurm places: tuxai's own gates, then ``sbatch``."""

    def __init__(self, config: DaemonConfig, store: Store, executor: SlurmExecutor) -> None:
        """``executor``: the Slurm backend (its ``test`` and ``engine_job`` are asked here too)."""
        super().__init__(config, store, executor)
        self.slurm = executor

    def admit(self, spec: JobSpec, caller: Caller, now: float) -> None:
        """Slurm's own verdict on the job, as its user would get it from sbatch.

        Raises:
            UsageError: Slurm refuses it (one line: Slurm's reason), it exports a launch variable, or its
                image is nowhere podman can get it (``daemon.image_store``).
        """
        check_gang(replace(spec, nodes=1), self.config.inventory)  # MASTER_ADDR … are tuxai's to set
        check_image_present(spec, caller)  # a localhost/ image podman has not: refused here, not on a node
        self.slurm.test(spec, (caller.uid, caller.gid, caller.groups))

    def cancel(self, job_id: int, caller: Caller, now: float) -> JobRecord:
        """A job queued in Slurm: its Slurm job cancelled (it never starts), then the job; else as any daemon."""
        with self._lock:
            job = self._own(job_id, caller, "cancel")
            if engine_queued(job):
                self._follow([job], now)  # Slurm may have started it since: then it stops as a running job
                job = self.store.get(job_id)
                if engine_queued(job):
                    self.executor.stop(AttemptHandle(job.run_dir), StopReason.CANCEL)  # scancel, and never starts
            return super().cancel(job_id, caller, now)

    def hold(self, job_id: int, caller: Caller, held: bool) -> JobRecord:
        """Hold or release a job tuxai still keeps; one already queued in Slurm cannot be held back.

        Raises:
            UsageError: the job is queued in Slurm (or not waiting at all).
        """
        with self._lock:
            job = self._own(job_id, caller, "hold" if held else "release")
            if held and engine_queued(job):
                raise UsageError(
                    f"job {job_id} is already queued in Slurm: tuxai can hold only a job it has not handed to Slurm",
                    hint="`tuxai cancel` it, or submit with --hold",
                )
            return super().hold(job_id, caller, held)

    def _schedule(self, running: Sequence[JobRecord], waiting: Sequence[JobRecord], now: float) -> None:
        """Follow the jobs queued in Slurm; hand every job whose tuxai gates are open to Slurm; say why
        the others wait (tuxai's reason) and why Slurm keeps a running job queued again (its requeue)."""
        queued = [j for j in waiting if engine_queued(j)]
        still = self._follow(queued, now)
        others = [j for j in waiting if not engine_queued(j)]
        gated = gate(self.store, others, [*running, *(j for j in queued if j.id in still)], now)  # caps count them
        eligible = [j for j in others if not j.held and j.eligible_at <= now and j.id in gated.eligible]
        starts = [Start(str(j.id), Allocation(SLURM_NODE)) for j in eligible]
        self._start(list(zip(eligible, starts, strict=True)), now)
        limit = self.config.scheduler.default_time_limit_s
        reasons = waiting_reasons(starts, others, gated, now, limit, lambda _: "")
        by_id = {j.id: j for j in others}
        changes: list[tuple[int, dict[str, object]]] = [
            (i, {"reason": r}) for i, r in reasons.items() if i in by_id and by_id[i].reason != r
        ]
        for job in running:
            if job.stop_request:
                continue  # "cancelling (by …)" says more
            words = queued_words(self.slurm.engine_job(AttemptHandle(job.run_dir)))  # Slurm requeued it
            if words != job.reason and (words or job.reason.startswith(QUEUED)):
                changes.append((job.id, {"reason": words}))
        self.store.update_many(changes)

    def _start(self, starts: list[tuple[JobRecord, Start]], now: float) -> None:
        """Prepare each job's attempt, record it waiting in Slurm's queue with that attempt (one
        transaction), then submit it: a crash between leaves an attempt that the next pass submits."""
        changes: list[tuple[int, dict[str, object]]] = []
        for job, decision in starts:
            job_dir = Path(job.log_path).parent if job.log_path else new_job_dir(self.config.home, job.id)
            log_path = str(job_dir / OUTPUT)
            env = self.store.environment(job.id)
            attempt, handle = prepare_attempt(self.executor, self.config, job, decision.allocation, log_path, env)
            fields: dict[str, object] = {"attempt": attempt, "run_dir": handle, "log_path": log_path}
            fields |= {"allocation": ENGINE_QUEUE, "started_at": None, "ended_at": None, "exit_code": None}
            fields |= {"signal": None, "oom_killed": False, "stop_request": None, "reason": f"{QUEUED}: submitted"}
            changes.append((job.id, fields))
        self.store.update_many(changes)
        for _, fields in changes:
            self.executor.start(AttemptHandle(str(fields["run_dir"])))

    def _follow(self, queued: Sequence[JobRecord], now: float) -> set[int]:
        """Each job queued in Slurm: still queued (its reason Slurm's), started (running from Slurm's
        start), or ended before a pass saw it run (running, then its end). The ids still queued."""
        still: set[int] = set()
        for job in queued:
            handle = AttemptHandle(job.run_dir)
            try:
                observed = self.executor.observe(handle)
            except Exception as exc:  # noqa: BLE001 - one attempt's files never stop the pass
                log.warning("job %d: its Slurm attempt could not be observed: %r", job.id, exc)
                still.add(job.id)
                continue
            if observed.seen is Seen.NOT_STARTED:
                self.executor.start(handle)  # recorded, then the daemon stopped: submitted now, once (the claim)
                still.add(job.id)
            elif observed.seen is Seen.QUEUED:
                still.add(job.id)
                words = queued_words(self.slurm.engine_job(handle))
                if words and words != job.reason:
                    self.store.update(job.id, reason=words)
            else:
                self._ran(job, observed, now)
        return still

    def _ran(self, job: JobRecord, observed: Observed, now: float) -> None:
        """Slurm started the job: running from Slurm's start where it placed it; ended already: its end too."""
        slurm = self.slurm.engine_job(AttemptHandle(job.run_dir))
        status = observed.status
        start = (slurm.start_time if slurm else None) or (status.started_at if status else None) or now
        fields = {"started_at": within(start, job.submitted_at, now), "allocation": slurm_placement(slurm)}
        if not self.store.transitions([(job.id, JobState.RUNNING, "", fields)], now):
            return  # a cancel got there first
        if observed.seen is not Seen.ALIVE:
            running = self.store.get(job.id)
            outcome = self._observe_one(running, now, reconciling=False)
            if outcome is not None:
                self._finish([(running, outcome)], now)


def slurm_daemon(config: DaemonConfig, store: Store, python: str = "") -> SlurmDaemon:
    """The daemon of ``tuxai up --slurm``: jobs go to the cluster this machine's Slurm commands reach
    (``python``: what the nodes run the node runner with; default the daemon's own)."""
    executor = SlurmExecutor(lambda job_id: store.get(job_id).spec, python=python or sys.executable)
    return SlurmDaemon(config, store, executor)
