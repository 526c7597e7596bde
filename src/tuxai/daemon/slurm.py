"""The daemon in front of a Slurm cluster (``tuxai up --slurm``): Slurm schedules, tuxai submits,
observes, stops and says why a job waits.

At submit, Slurm itself judges the job (``sbatch --test-only``, as the user): what it can never
run is refused in one line, with Slurm's words. Every job whose tuxai gates are open (held,
``--after``, array caps, a retry's backoff) goes to Slurm at the next pass, as its own user
(``executor.slurm``): from then on it is *running* in tuxai's store (an attempt exists) and,
while Slurm keeps it queued, its reason is Slurm's pending reason in words
(``queued in Slurm (job 42): …``), which ``tuxai ls`` shows as its state; it runs (``started_at``)
from the pass that no longer finds it queued.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace

from tuxai.daemon.arrays import gate
from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.daemon.gang import check_gang
from tuxai.executor.attempt import AttemptHandle
from tuxai.executor.slurm import SlurmExecutor
from tuxai.model.job import JobRecord, JobSpec
from tuxai.model.resources import Allocation
from tuxai.scheduler.decisions import Start
from tuxai.store.jobs import Store

SLURM_NODE = "slurm"  # the allocation's node: Slurm chooses the real ones
QUEUED = "queued in Slurm"


class SlurmDaemon(Daemon):
    """A ``Daemon`` whose jobs Slurm places: tuxai's own gates, then ``sbatch``."""

    def __init__(self, config: DaemonConfig, store: Store, executor: SlurmExecutor) -> None:
        """``executor``: the Slurm backend (its ``test`` and ``waiting`` are asked here too)."""
        super().__init__(config, store, executor)
        self.slurm = executor

    def admit(self, spec: JobSpec, caller: Caller, now: float) -> None:
        """Slurm's own verdict on the job, as its user would get it from sbatch.

        Raises:
            UsageError: Slurm refuses it (one line: Slurm's reason), or it exports a launch variable.
        """
        check_gang(replace(spec, nodes=1), self.config.inventory)  # MASTER_ADDR … are tuxai's to set
        self.slurm.test(spec, (caller.uid, caller.gid, caller.groups))

    def _schedule(self, running: Sequence[JobRecord], waiting: Sequence[JobRecord], now: float) -> None:
        """Hand every job whose gates are open to Slurm; say why each queued one waits, in Slurm's words."""
        gated = gate(self.store, waiting, running, now)
        eligible = [j for j in waiting if not j.held and j.eligible_at <= now and j.id in gated.eligible]
        self._start([(j, Start(str(j.id), Allocation(SLURM_NODE))) for j in eligible], now)
        changes: list[tuple[int, dict[str, object]]] = []
        for job in running:
            if job.stop_request:
                continue  # "cancelling (by …)" says more
            words = self.slurm.waiting(AttemptHandle(job.run_dir)) or ""
            if words and words != job.reason:
                changes.append((job.id, {"reason": words}))
            elif not words and job.reason.startswith(QUEUED):  # Slurm started it: it runs from now
                changes.append((job.id, {"reason": "", "started_at": now}))
        self.store.update_many(changes)


def slurm_daemon(config: DaemonConfig, store: Store, python: str = "") -> SlurmDaemon:
    """The daemon of ``tuxai up --slurm``: jobs go to the cluster this machine's Slurm commands reach
    (``python``: what the nodes run the node runner with; default the daemon's own)."""
    executor = SlurmExecutor(lambda job_id: store.get(job_id).spec, python=python or sys.executable)
    return SlurmDaemon(config, store, executor)
