"""The daemon's telemetry thread: every period, ``Telemetry.step`` over the running jobs, then store
samples and energy, flag idle and hung jobs (and act on them if asked), roll up and prune."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

from tuxai.daemon.cluster_telemetry import cluster_telemetry
from tuxai.daemon.core import Daemon
from tuxai.daemon.health import BACKOFF_MAX_S, LoopHealth
from tuxai.executor.attempt import AttemptHandle
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.job import JobRecord, JobState
from tuxai.store.job_gpu_use import JobGpuUseStore, fold
from tuxai.store.telemetry import EnergyDelta, SampleRow, TelemetryStore
from tuxai.telemetry.collector import RunningJob, StepResult, Telemetry
from tuxai.telemetry.energy import Holding, JobEnergy, totals
from tuxai.telemetry.foreign import ForeignProcess, busy_outside, foreign_processes
from tuxai.telemetry.prometheus import JobRow, MetricsView, render

ROLLUP_EVERY_S = 60.0
POLICIES = ("none", "cancel", "requeue")


class TelemetryLoop:
    """Samples, stores, flags. ``policy``: what to do with a hung job (none, cancel, requeue)."""

    def __init__(self, daemon: Daemon, telemetry: Telemetry, policy: str = "none") -> None:
        self.daemon, self.telemetry, self.policy = daemon, telemetry, policy
        self.store = TelemetryStore(daemon.store)
        self.use = JobGpuUseStore(daemon.store)  # each job's mean GPU utilization and peak memory
        self._pgids: dict[int, int] = {}
        self._cgroups: dict[int, CgroupPlan] = {}
        self._last_rollup = 0.0
        self.foreign: list[ForeignProcess] = []  # the GPU processes no running job owns, at the last step
        self._instances = {  # (GPU, MIG GPU instance id) → the instance's index
            (g.index, m.gpu_instance_id): m.index
            for g in daemon.config.inventory.gpus
            for m in g.mig_devices
            if m.gpu_instance_id is not None
        }
        self.steps = 0
        self.cpu_s = 0.0  # this thread's own CPU time (bench/telemetry.py reads it)
        self.cluster = cluster_telemetry(daemon.executor, telemetry.config)  # a cluster job's ranks, on their nodes
        self.health = LoopHealth("telemetry step", stale_after_s=3 * telemetry.config.period_s + BACKOFF_MAX_S)
        # The job name /metrics shows (anyone who reaches it may scrape it): the API sets its
        # visibility rule here (tuxai.api.views.public_name); the display name until then.
        self.public_name: Callable[[JobRecord], str] = lambda job: job.spec.display_name

    def running(self, jobs: list[JobRecord]) -> list[RunningJob]:
        """The running jobs as telemetry needs them (the pgid from the shim's status, once known)."""
        found = []
        for job in jobs:
            if job.id not in self._pgids and job.run_dir:
                processes = self.daemon.executor.processes(AttemptHandle(job.run_dir))  # the executor's to say
                if processes is not None:
                    self._pgids[job.id], self._cgroups[job.id] = processes.pgid, processes.cgroup
            holdings = tuple(
                Holding(job.id, g.index, g.milli, g.mig_uuid is not None)
                for g in (job.allocation.gpus if job.allocation else ())
            )
            found.append(
                RunningJob(
                    job.id,
                    job.user,
                    self._pgids.get(job.id),
                    holdings,
                    job.log_path,
                    self._cgroups.get(job.id, CgroupPlan()),
                )
            )
        return found

    def step(self, now: float) -> StepResult:
        """One sample of the machine, stored; flags recorded."""
        started = time.thread_time()
        jobs = self.daemon.store.jobs([JobState.RUNNING])
        result = self.telemetry.step(now, self.running(jobs) if self.cluster is None else [])  # a cluster: none here
        rows = [
            SampleRow(
                s.index,
                s.at,
                s.util_pct,
                s.memory_used_bytes,
                s.power_w,
                result.gpu_energy_j.get(s.index, (None, ""))[0],
                s.temperature_c,
            )
            for s in result.samples
        ]
        self.store.add_samples(rows)
        self.use.add(fold(rows, {j.id: [g.index for g in j.allocation.gpus] for j in jobs if j.allocation}))
        config = self.telemetry.config
        self.store.add_energy(
            {j: EnergyDelta(e.gpu_j, e.cpu_j, e.gpu_s, dict(e.methods)) for j, e in result.energy.items()},
            config.grid_g_per_kwh,
            config.pue,
            now,
        )
        if self.cluster is not None:
            self.cluster.record(self, now, jobs, result.flags)
        self._flag(jobs, result, now)
        pids = (pid for u in result.usage.values() for pid in u.pids)
        self.foreign = foreign_processes(result.samples, pids, instances=self._instances)
        busy = busy_outside(self.foreign)
        if busy != self.daemon.busy_outside:  # a GPU became busy or free outside tuxai: schedule again
            self.daemon.busy_outside = busy
            self.daemon.wake.set()
        if now - self._last_rollup >= ROLLUP_EVERY_S:
            self.store.rollup(now)
            self.store.prune(now)
            self._last_rollup = now
        self._pgids = {j: p for j, p in self._pgids.items() if j in result.usage}
        self._cgroups = {j: c for j, c in self._cgroups.items() if j in result.usage}
        self.steps += 1
        self.cpu_s += time.thread_time() - started
        return result

    def _flag(self, jobs: list[JobRecord], result: StepResult, now: float) -> None:
        detection = self.telemetry.config.detection
        for job in jobs:
            flags = result.flags.get(job.id, set())
            if set(job.flags) == flags:
                continue
            words = []
            if "idle" in flags and "idle" not in job.flags:
                words.append(f"flagged idle: its GPUs under {detection.busy_pct:g} % for {detection.idle_after_s:g} s")
            if "hung" in flags and "hung" not in job.flags:
                words.append(f"flagged hung: no CPU, GPU or log progress for {detection.hung_after_s:g} s")
            cleared = set(job.flags) - flags
            if cleared:
                words.append(f"no longer {' or '.join(sorted(cleared))}")
            self.daemon.store.note(job.id, now, "; ".join(words), flags=",".join(sorted(flags)))
            # A session at its prompt makes no progress by design: flagged, never cancelled or requeued for it.
            if "hung" in flags and "hung" not in job.flags and self.policy != "none" and not job.spec.session:
                self.daemon.stop_flagged(job.id, self.policy, now)

    def run(self, stop: threading.Event) -> None:
        """Step every period until ``stop``; a failing step is logged and tried again after a backoff."""
        period = self.telemetry.config.period_s
        next_at = time.time()
        while not stop.wait(max(0.0, next_at - time.time())):
            next_at = max(next_at + period, time.time())  # late (a slow step): no burst to catch up
            try:
                self.step(time.time())
            except Exception as exc:  # noqa: BLE001 (telemetry must never take the daemon down)
                # Logged (a print to a full disk raised again, here, and ended the thread: D7).
                next_at = max(next_at, time.time() + self.health.failed(exc))
                continue
            self.health.succeeded(time.time())

    def metrics(self) -> str:
        """The Prometheus scrape body."""
        jobs = self.daemon.store.jobs()
        running = [j for j in jobs if j.state is JobState.RUNNING]
        inventory = self.daemon.config.inventory
        view = MetricsView(
            hostname=inventory.host.hostname or socket.gethostname(),
            samples=self.telemetry.latest,
            models={g.index: g.name for g in inventory.gpus},
            running=[
                JobRow(
                    j.id,
                    j.user,
                    self.public_name(j),
                    tuple(g.index for g in j.allocation.gpus) if j.allocation else (),
                    frozenset(j.flags),
                )
                for j in running
            ],
            usage=dict(self.telemetry.usage),
            energy=self.store.all_energy(),
            users={j.id: j.user for j in jobs},
            queue=dict(Counter(j.state.value for j in jobs)),
            sampler=self.telemetry.sampler.method,
        )
        return render(view)

    def energy(self, job_id: int) -> dict[str, object] | None:
        """The ``energy`` object of a job (None before its first sample)."""
        return self.energies([job_id]).get(job_id)

    def energies(self, job_ids: list[int]) -> dict[int, dict[str, object]]:
        """The ``energy`` objects of these jobs (two reads for a page of them), with each one's mean GPU
        utilization and peak GPU memory (``store.job_gpu_use``); a job before its first sample is absent."""
        used = self.use.of(job_ids)
        found = {}
        for job_id, row in self.store.energy_of(job_ids).items():
            energy = totals(
                JobEnergy(row["gpu_j"], row["cpu_j"], row["gpu_s"], row["methods"]), row["grid_g_per_kwh"], row["pue"]
            )
            gpu_use = used.get(job_id)
            if gpu_use is not None:
                energy |= {
                    "gpu_util_mean_pct": gpu_use.util_mean_pct,
                    "gpu_memory_peak_bytes": gpu_use.memory_peak_bytes,
                }
            found[job_id] = energy
        return found
