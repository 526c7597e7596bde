"""Jobs a cluster engine holds queued (``tuxai up --slurm``: submitted with sbatch, PENDING in squeue).

Such a job is *waiting* in tuxai's store (pending, or requeued) and keeps the attempt the engine
has: its handle in ``run_dir``, its allocation ``ENGINE_QUEUE`` (a node name no engine gives) until
the engine starts it and the daemon records it running, from the engine's start, where the engine
put it (``daemon.slurm``). Its cancel stops the attempt first (the engine drops the job), then ends it.
"""

from __future__ import annotations

from tuxai.model.job import JobRecord
from tuxai.model.resources import Allocation

ENGINE_QUEUE = Allocation("(engine queue)")


def engine_queued(job: JobRecord) -> bool:
    """The job waits in a cluster engine's queue with an attempt it was handed (not in tuxai's own)."""
    return job.state.waiting and bool(job.run_dir) and job.allocation is not None and job.allocation == ENGINE_QUEUE
