"""A job: what was asked (``JobSpec``), where it stands (``JobState`` and its transition table).

    pending ──► running ──► succeeded | failed | cancelled | timeout | preempted
       │           │
       │           └──► requeued ──► running …   (retry, checkpoint exit code, preemption)
       └──► cancelled | failed (rejected)

``requeued`` behaves like ``pending`` for the scheduler; it says the job ran before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tuxai.errors import InvalidTransition
from tuxai.model.array import ArraySpec
from tuxai.model.dependency import Dependency
from tuxai.model.gang import Launcher
from tuxai.model.resources import Allocation, Request

REQUEUE_EXIT_CODE = 99
"""A job that exits with this code is put back in the queue (the checkpoint contract:
SIGTERM → save a checkpoint → ``exit(99)``). Also in the job's environment as
``TUXAI_REQUEUE_EXIT_CODE``."""

MAX_REQUEUES = 1000
"""A job requeued this many times by its own exit code fails: a loop, not a checkpoint."""


class JobState(StrEnum):
    """Where a job stands."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    PREEMPTED = "preempted"
    REQUEUED = "requeued"

    @property
    def terminal(self) -> bool:
        """No transition leaves this state."""
        return not TRANSITIONS[self]

    @property
    def waiting(self) -> bool:
        """The scheduler may start the job (pending or requeued)."""
        return self in (JobState.PENDING, JobState.REQUEUED)


_ENDS = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT, JobState.PREEMPTED, JobState.REQUEUED}
)
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.REQUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: _ENDS,
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.TIMEOUT: frozenset(),
    JobState.PREEMPTED: frozenset(),
}


def check_transition(job_id: int | str, current: JobState, target: JobState) -> None:
    """Raise ``InvalidTransition`` unless the table connects ``current`` to ``target``."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(str(job_id), current.value, target.value)


@dataclass(frozen=True)
class JobSpec:
    """Everything a user asked for, as submitted. Times in seconds, memory in bytes (``request``)."""

    command: tuple[str, ...]
    name: str = ""
    request: Request = field(default_factory=Request)
    time_limit_s: float | None = None
    grace_s: float = 60.0
    priority: int = 0
    retries: int = 0
    retry_backoff_s: float = 5.0
    requeue: bool = True  # preempted jobs go back to the queue (else they end as ``preempted``)
    preemptible: bool = False
    workdir: str = ""
    exports: tuple[tuple[str, str], ...] = ()
    env_path: str = ""  # a virtual environment whose ``bin`` goes first on PATH
    env_lock: str = ""  # the text of ``--env``'s requirements file: each cluster node builds it (docs/cluster.md)
    held: bool = False
    after: tuple[Dependency, ...] = ()  # start only once these ended as asked (``--after``)
    array: ArraySpec | None = None  # one job per index (``--array``)
    session: str = ""  # interactive (``tuxai run``): "pty" or "pipe" (model.session); "": a batch job
    nodes: int = 1  # a gang over this many nodes, ``request`` on each (``--nodes``, model.gang)
    launcher: Launcher | None = None  # a gang's launcher; None: not a gang (no MASTER_ADDR …)
    procs_per_node: int = 0  # a gang's processes on each node (``--nproc-per-node``); 0: one per GPU
    image: str = ""  # an OCI image the job runs in, through podman (``--image``, model.container); "": none
    shm_bytes: int = 0  # the container's /dev/shm (``shm_size``); 0: model.container.DEFAULT_SHM_BYTES
    serve_model: str = ""  # the model a served container job reads, mounted read-only (``submit --serve --image``)
    account: str = ""  # Slurm's --account, --partition, --qos (job-file fields; model.slurm)
    partition: str = ""
    qos: str = ""

    @property
    def display_name(self) -> str:
        """The name, else the program's base name."""
        return self.name or (self.command[0].rsplit("/", 1)[-1] if self.command else "job")


def retry_delay_s(spec: JobSpec, failures: int) -> float:
    """Exponential backoff before retry number ``failures`` (1-based), capped at one hour."""
    return float(min(3600.0, spec.retry_backoff_s * 2 ** max(0, failures - 1)))


class StopReason(StrEnum):
    """Why an attempt is asked to stop; the shim records the one it acted on."""

    CANCEL = "cancel"  # a user or root: tuxai cancel
    PREEMPT = "preempt"  # a higher-priority job needs its resources
    REQUEUE = "requeue"  # flagged hung, under the requeue policy
    CANCEL_HUNG = "cancel-hung"  # flagged hung, under the cancel policy
    TIMEOUT = "timeout"  # its time limit (the shim's own)
    SHUTDOWN = "shutdown"  # a SIGTERM from outside tuxai

    @classmethod
    def parse(cls, text: object) -> StopReason | None:
        """A stored or written reason → the enum (None for none; an unknown one reads as a cancel)."""
        if text is None or text == "":
            return None
        try:
            return cls(str(text))
        except ValueError:
            return cls.CANCEL


@dataclass(frozen=True)
class JobRecord:
    """A job as the store knows it: the spec, who submitted it, and what happened so far.

    ``attempt`` counts starts; ``failures`` the failed runs that used up a retry; ``requeues``
    the runs that asked to be requeued. ``stop_request`` is ``cancel`` or ``preempt`` while a
    running job is being stopped. ``run_dir`` is the executor's handle for the current attempt
    (``executor.attempt``: opaque to the daemon; the local executor's is its run directory).
    """

    id: int
    spec: JobSpec
    user: str
    uid: int
    gid: int
    state: JobState
    submitted_at: float
    groups: tuple[int, ...] = ()
    reason: str = ""
    eligible_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    attempt: int = 0
    failures: int = 0
    requeues: int = 0
    held: bool = False
    stop_request: StopReason | None = None
    allocation: Allocation | None = None
    log_path: str = ""
    run_dir: str = ""
    wall_s: float | None = None
    cpu_s: float | None = None
    max_rss_bytes: int | None = None
    oom_killed: bool = False
    for_job: int | None = None  # the job a preemption made room for
    flags: tuple[str, ...] = ()  # telemetry's: idle, hung
    array_job: int | None = None  # the array it is a task of (its first task's id): ``12_3``
    array_index: int | None = None
    rank_exits: tuple[str, ...] = ()  # a gang's ranks' ends in words, rank order (its last attempt's)
