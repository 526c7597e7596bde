"""``Daemon``: the control loop's one step, ``tick(now)``, and the operations the API calls.

    tick(now): observe running attempts → finish what ended → snapshot → scheduler.decide
               → start / preempt / reserve → pending reasons → store

Everything a job is lives in the store and with its executor (a handle per attempt); the daemon's memory holds
nothing that a restart would miss. ``reconcile(now)`` at start adopts live shims, finishes
what ended while it was away, and gives up attempts that never started (they run again).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from tuxai.daemon.arrays import check_after, gate
from tuxai.daemon.cluster import ClusterNodes, cluster_down, prepare_for
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.containers import check_container_submit
from tuxai.daemon.gang import check_gang
from tuxai.daemon.jobdirs import new_job_dir, remove_job_dir
from tuxai.daemon.limits import WindowUse, check_submit, job_groups
from tuxai.daemon.outcome import Outcome, classify, within
from tuxai.daemon.reasons import waiting_reasons
from tuxai.daemon.standing import standings
from tuxai.errors import PermissionDenied, UsageError
from tuxai.executor.attempt import AttemptHandle, Executor, Seen
from tuxai.executor.environment import is_protected
from tuxai.executor.rundir import OUTPUT
from tuxai.model.array import task_name
from tuxai.model.job import JobRecord, JobSpec, JobState, StopReason
from tuxai.model.wire import Standing
from tuxai.scheduler.admission import rejection
from tuxai.scheduler.decide import decide
from tuxai.scheduler.decisions import Preempt, Reject, Start
from tuxai.scheduler.priority import queue_order
from tuxai.scheduler.snapshot import Job, Node, Running, Snapshot, decay_usage
from tuxai.scheduler.unavailable import pending_outside_note
from tuxai.store.jobs import Store

PRUNE_EVERY_S = 3600.0  # how often ended jobs past their retention are forgotten
START_TIMEOUT_S = 30.0  # an attempt no shim claimed after this long is given up and run again
WAITING = (JobState.PENDING, JobState.REQUEUED)
log = logging.getLogger("tuxai.daemon")
__all__ = ["Caller", "Daemon", "DaemonConfig"]  # Caller and DaemonConfig live in daemon.config


class Daemon:
    """The one place that wires store, scheduler and executor together."""

    def __init__(
        self, config: DaemonConfig, store: Store, executor: Executor, cluster: ClusterNodes | None = None
    ) -> None:
        self.config, self.store, self.executor = config, store, executor
        self.node = Node(config.node, config.inventory)
        self.cluster = cluster  # a cluster engine's nodes (tuxai up --ray: daemon.cluster); None: this machine
        self.wake = threading.Event()
        self._lock = threading.RLock()
        self._ended: set[int] = set()
        self._ended_lock = threading.Lock()
        self.ticks = 0
        self._last_prune = 0.0
        self.standing: Mapping[int, Standing] = {}  # the last pass's priority terms by job (daemon.standing)
        self.window_use = WindowUse()  # GPU-hours in the quotas' window, counted every few seconds
        self.busy_outside: Mapping[int | tuple[int, int], str] = {}  # GPU or (GPU, MIG) → who, outside tuxai

    # ---- operations (API) -------------------------------------------------------------

    def submit(self, spec: JobSpec, caller: Caller, environment: dict[str, str], now: float) -> int:
        """Validate against the machine, store durably, wake the loop; returns the job id.

        Raises:
            UsageError: the request can never fit this machine (the message says what it has).
        """
        self.admit(spec, caller, now)  # the machine or cluster can run it (daemon.slurm: Slurm's verdict)
        check_container_submit(spec)  # an image: podman here, no --env (daemon.containers)
        protected = sorted(name for name, _ in spec.exports if is_protected(name))
        if protected:
            raise UsageError(
                f"export: {', '.join(protected)} is set by tuxai for every job and cannot be exported",
                hint="TUXAI_* and the GPU visibility variables come from the scheduler's decision",
            )
        # Checked here only for the daemon's own user: a check as root would let anybody probe
        # paths they cannot see (security issue A8). The shim enters it as the job's user, and
        # a missing or forbidden directory fails the job with the reason.
        if spec.workdir and not os.path.isabs(spec.workdir):
            raise UsageError(f"working directory {spec.workdir!r} is not an absolute path", hint="pass a full path")
        if spec.workdir and caller.uid == os.getuid() and not Path(spec.workdir).is_dir():
            raise UsageError(f"working directory {spec.workdir} does not exist", hint="pass an existing --workdir")
        check_after(self.store, spec)  # --after names jobs that exist and can still end as asked
        spec = check_submit(self.config, self.store, spec, caller)  # quotas: max_time, max_pending (daemon.limits)
        job_id = self.store.submit(
            spec,
            (caller.user, caller.uid, caller.gid, caller.groups),
            environment,
            now,
            reason="held" if spec.held else "submitted",
        )
        self.wake.set()
        return job_id

    def admit(self, spec: JobSpec, caller: Caller, now: float) -> None:
        """Refuse, in one line naming what the nodes have, what they can never run (and gangs: daemon.gang)."""
        reason = rejection(Job("new", caller.user, spec.request, now), self._nodes())
        if reason is not None:
            raise UsageError(f"impossible request: {reason}", hint="ask for what the machine has (`tuxai gpus`)")
        check_gang(spec, self.config.inventory, self._nodes() if self.cluster else None)

    def visible(self, caller: Caller, job: JobRecord) -> bool:
        """Users see and act on their own jobs; admins on all."""
        return caller.admin or job.uid == caller.uid

    def job(self, job_id: int, caller: Caller) -> JobRecord:
        """One job the caller may see.

        Raises:
            JobNotFound: no such job.
            PermissionDenied: another user's job (its command and environment are theirs).
        """
        job = self.store.get(job_id)
        if not self.visible(caller, job):
            raise PermissionDenied(f"job {job_id} belongs to {job.user}", hint="you can only see your own jobs")
        return job

    def jobs(self, caller: Caller, states: Sequence[JobState] | None = None) -> list[JobRecord]:
        """The caller's jobs (optionally only in ``states``); an admin's list has everybody's."""
        return self.store.jobs(states, user=None if caller.admin else caller.user)

    def cancel(self, job_id: int, caller: Caller, now: float) -> JobRecord:
        """Cancel a waiting job at once; ask a running one to stop (grace period, then SIGKILL)."""
        with self._lock:
            job = self._own(job_id, caller, "cancel")
            if job.state.waiting:
                return self.store.transition(job_id, JobState.CANCELLED, now, f"cancelled by {caller.user}")
            if job.state is JobState.RUNNING:
                if job.stop_request is not StopReason.CANCEL:
                    self.store.update(job_id, stop_request=StopReason.CANCEL, reason=f"cancelling (by {caller.user})")
                    self.executor.stop(AttemptHandle(job.run_dir), StopReason.CANCEL)
                return self.store.get(job_id)
            raise UsageError(f"job {_named(job)} already ended ({job.state.value})", hint="nothing to cancel")

    def stop_flagged(self, job_id: int, policy: str, now: float) -> None:
        """Telemetry's policy for a hung job: ``cancel`` it, or ``requeue`` it (SIGTERM, grace, run again)."""
        with self._lock:
            job = self.store.get(job_id)
            if job.state is not JobState.RUNNING or job.stop_request:
                return
            kind = StopReason.CANCEL_HUNG if policy == "cancel" else StopReason.REQUEUE
            verb = "cancelling" if kind is StopReason.CANCEL_HUNG else "requeueing"  # the state `ls` shows
            self.store.update(job_id, stop_request=kind, reason=f"{verb}: flagged hung")
            self.executor.stop(AttemptHandle(job.run_dir), kind)

    def hold(self, job_id: int, caller: Caller, held: bool) -> JobRecord:
        """Keep a waiting job from starting (``held``) or let it go again."""
        with self._lock:
            job = self._own(job_id, caller, "hold" if held else "release")
            if not job.state.waiting:
                raise UsageError(
                    f"job {_named(job)} is {job.state.value}: only pending jobs can be held or released",
                    hint="`tuxai cancel` stops a running job",
                )
            self.store.update(job_id, held=held, reason="held" if held else "released")
            self.wake.set()
            return self.store.get(job_id)

    def _own(self, job_id: int, caller: Caller, verb: str) -> JobRecord:
        job = self.store.get(job_id)
        if not self.visible(caller, job):
            raise PermissionDenied(
                f"job {job_id} belongs to {job.user}: you cannot {verb} it", hint="only its owner or root can"
            )
        return job

    # ---- the control loop ---------------------------------------------------------------

    def ended(self, job_id: int) -> None:
        """A shim said its job ended (its datagram): look at that job at the next tick."""
        with self._ended_lock:
            self._ended.add(job_id)
        self.wake.set()

    def tick(self, now: float, full: bool = True) -> None:
        """One pass: finish what ended, decide, start and stop, record why the rest waits.

        ``full``: look at every running job's attempt; else only at those whose shim said
        they ended (the loop's fast path; a full tick every few seconds catches the rest).
        """
        with self._lock:
            self.ticks += 1
            with self._ended_lock:
                told, self._ended = self._ended, set()
            running, ended = [], []
            for job in self.store.jobs([JobState.RUNNING]):
                if not full and job.id not in told:
                    running.append(job)
                    continue
                outcome = self._observe_one(job, now, reconciling=False)
                if outcome is None:
                    running.append(job)
                else:
                    ended.append((job, outcome))
            self._finish(ended, now)
            waiting = self.store.jobs(list(WAITING))
            self._schedule(running, waiting, now)
            if full and now - self._last_prune >= PRUNE_EVERY_S:
                self._last_prune = now
                self.prune_finished(now)

    def prune_finished(self, now: float) -> list[int]:
        """Forget jobs that ended more than ``keep_finished_s`` ago, and remove their directories.

        Their ids are never handed out again (the store's AUTOINCREMENT), nor their directories
        (``jobdirs.new_job_dir``). Returns the ids forgotten.
        """
        keep = self.config.keep_finished_s
        if not keep:
            return []
        old = self.store.ended_before(now - keep)
        for job in old:
            remove_job_dir(self.config.home, job)
        self.store.forget([j.id for j in old])
        return [j.id for j in old]

    def reconcile(self, now: float) -> None:
        """At start: adopt live shims, finish ended attempts, give up the ones that never started."""
        with self._lock:
            ended = []
            for job in self.store.jobs([JobState.RUNNING]):
                outcome = self._observe_one(job, now, reconciling=True)
                if outcome is not None:
                    ended.append((job, outcome))
            self._finish(ended, now)

    def resend_stops(self) -> None:
        """Ask again every running job with a stop request (a lost signal, a daemon restart)."""
        with self._lock:
            for job in self.store.jobs([JobState.RUNNING]):
                if job.stop_request:
                    self.executor.stop(AttemptHandle(job.run_dir), job.stop_request)

    def _observe_one(self, job: JobRecord, now: float, reconciling: bool) -> Outcome | None:
        """``_observe``, one job's failure kept to that job (its reason says it), never the whole pass's."""
        try:
            return self._observe(job, now, reconciling)
        except Exception as exc:  # noqa: BLE001 - whatever one attempt's files hold, the loop goes on
            log.warning("job %d: its attempt could not be observed: %r", job.id, exc)
            reason = f"its attempt could not be observed ({type(exc).__name__}): tried again at the next pass"
            if job.reason != reason:
                self.store.update(job.id, reason=reason)
            return None

    def _observe(self, job: JobRecord, now: float, reconciling: bool) -> Outcome | None:
        """Look at a running job's attempt; its ``Outcome`` when it ended, else None."""
        handle = AttemptHandle(job.run_dir)  # the executor's name for the attempt (a run directory here)
        observed = self.executor.observe(handle)
        if observed.seen is Seen.EXITED and observed.status is not None:
            return classify(job, observed.status, now)
        if observed.seen is Seen.NOT_STARTED:
            late = now - (job.started_at or now) > START_TIMEOUT_S
            if (reconciling or late) and self.executor.abandon(handle):
                why = "the daemon stopped before the job started" if reconciling else "its shim never started"
                return Outcome(JobState.REQUEUED, f"{why}: requeued, not counted as a failure")
            return None
        if observed.seen is Seen.LOST:
            self.executor.kill_lost(handle)
            return classify(job, None, now)
        if observed.seen is Seen.VANISHED:
            # Nothing proves the attempt ended: kill what is provably its own (its cgroup) and
            # never run it again on our own (security issue D9: a second attempt started).
            self.executor.kill_lost(handle)
            return Outcome(
                JobState.FAILED,
                f"its attempt ({handle}) vanished while it ran: what was left of it was killed",
                {},
            )
        return None

    def _finish(self, ended: list[tuple[JobRecord, Outcome]], now: float) -> None:
        """Record the ends of one pass in one transaction, then charge GPU time to the users."""
        changes = []
        for job, outcome in ended:
            fields = {**outcome.fields, "stop_request": None}
            # A status may be the user's to write (a Slurm node's): its times within what the daemon saw.
            fields["ended_at"] = within(fields.get("ended_at", now), job.started_at or now, now)
            if "started_at" in fields:
                fields["started_at"] = within(fields["started_at"], job.started_at or now, fields["ended_at"])
            if outcome.state is JobState.REQUEUED:
                fields.setdefault("eligible_at", now)
            changes.append((job.id, outcome.state, outcome.reason, fields))
        moved = set(self.store.transitions(changes, now))  # a cancel may have got there first
        for (job, _), (_, _, _, fields) in zip(ended, changes, strict=True):
            gpus = job.spec.request.gpu_equivalents * job.spec.nodes  # a gang: every node's
            if job.id in moved and gpus > 0:
                ran = max(0.0, float(fields["ended_at"]) - (job.started_at or now))
                self._charge(job.user, gpus * ran, now)

    def _charge(self, user: str, gpu_seconds: float, now: float) -> None:
        known = self.store.usage().get(user)
        previous, at = (known.gpu_seconds, known.updated_at) if known else (0.0, now)
        decayed = decay_usage(previous, now - at, self.config.scheduler.half_life_s)
        self.store.set_usage(user, decayed + gpu_seconds, now)

    def _usage(self, now: float) -> dict[str, float]:
        half_life = self.config.scheduler.half_life_s
        return {u: decay_usage(k.gpu_seconds, now - k.updated_at, half_life) for u, k in self.store.usage().items()}

    def _schedule(self, running: Sequence[JobRecord], waiting: Sequence[JobRecord], now: float) -> None:
        gated = gate(self.store, waiting, running, now)  # dependencies, array caps (daemon/arrays.py)
        eligible = [j for j in waiting if not j.held and j.eligible_at <= now and j.id in gated.eligible]
        snapshot = Snapshot(
            nodes=self._nodes(),
            now=now,
            pending=tuple(_scheduler_job(j) for j in eligible),
            running=tuple(
                Running(_scheduler_job(j), j.allocation, j.started_at or now, draining=bool(j.stop_request))
                for j in running
                if j.allocation is not None
            ),
            usage=self._usage(now),
            config=self.config.scheduler,
            quotas=self.config.quotas,
            quota_use=self.window_use.get(self.config.quotas, self.store, now),
            busy_outside={} if self.config.allow_foreign_gpu_use else {self.node.name: self.busy_outside},
        )
        order = queue_order(snapshot) if eligible else []  # ranked once: decide uses it, `tuxai show` shows it
        decisions = decide(snapshot, order) if eligible and not cluster_down(self.cluster) else []
        self.standing = standings(order, decisions, now, self.standing, (j.id for j in running))
        by_id = {j.id: j for j in [*running, *waiting]}
        self._start([(by_id[int(d.job_id)], d) for d in decisions if isinstance(d, Start)], now)
        for decision in decisions:
            job_id = int(decision.job_id)
            if isinstance(decision, Preempt):
                victim = by_id[job_id]
                why = f"preempting (for job {decision.for_job})"
                self.store.update(job_id, stop_request=StopReason.PREEMPT, for_job=int(decision.for_job), reason=why)
                self.executor.stop(AttemptHandle(victim.run_dir), StopReason.PREEMPT)
            elif isinstance(decision, Reject):
                self.store.transition(job_id, JobState.FAILED, now, f"can never run here: {decision.reason}")
        outside = snapshot.busy_outside.get(self.node.name, {})
        reasons = waiting_reasons(
            decisions,
            waiting,
            gated,
            now,
            self.config.scheduler.default_time_limit_s,
            lambda s: cluster_down(self.cluster) or pending_outside_note(outside, self.node.inventory.gpus, s.request),
        )
        changes = [(i, {"reason": r}) for i, r in reasons.items() if by_id[i].reason != r]
        self.store.update_many(changes)
        if gated.waits and any(isinstance(d, Start) for d in decisions):
            self.wake.set()  # "waits for job 12 (pending)" was said before job 12 started: say it again

    def _start(self, starts: list[tuple[JobRecord, Start]], now: float) -> None:
        """Prepare each attempt with the executor, record them all running in one transaction, then start them.

        In this order a crash leaves either a pending job (run again) or a running job whose
        attempt no shim claimed (given up at the next start, then run again): never two runs.
        """
        changes = []
        for job, decision in starts:
            job_dir = Path(job.log_path).parent if job.log_path else new_job_dir(self.config.home, job.id)
            log_path = str(job_dir / OUTPUT)
            env = self.store.environment(job.id)
            allocation = decision.allocation  # a gang's other nodes in its ``more`` (daemon.cluster)
            attempt, handle = prepare_for(self.executor, self.config, job, allocation, self._nodes, (log_path, env))
            ahead = decision.explanation.get("backfilled_before")
            fields = {
                "attempt": attempt,
                "run_dir": handle,  # the executor's handle (the column keeps its old name)
                "log_path": log_path,
                "allocation": allocation,
                "started_at": now,
                "ended_at": None,
                "exit_code": None,
                "signal": None,
                "oom_killed": False,
                "stop_request": None,
            }
            changes.append((job.id, JobState.RUNNING, f"backfilled ahead of job {ahead}" if ahead else "", fields))
        moved = set(self.store.transitions(changes, now))
        for job_id, _, _, fields in changes:
            if job_id in moved:
                self.executor.start(AttemptHandle(str(fields["run_dir"])))

    def _nodes(self) -> tuple[Node, ...]:
        """What the scheduler places on: the cluster's nodes, or this machine."""
        return self.cluster.nodes() if self.cluster is not None else (self.node,)


def _named(job: JobRecord) -> str:
    return task_name(job.array_job, job.array_index, job.id)  # 12_3 for a task of array 12


def _scheduler_job(job: JobRecord) -> Job:
    return Job(
        id=str(job.id),
        user=job.user,
        request=job.spec.request,
        submitted_at=job.submitted_at,
        time_limit_s=job.spec.time_limit_s,
        priority=job.spec.priority,
        preemptible=job.spec.preemptible,
        groups=job_groups(job),
        nodes=job.spec.nodes,
    )
