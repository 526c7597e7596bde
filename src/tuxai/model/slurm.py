"""A tuxai job in Slurm's terms, and Slurm's answers in tuxai's. Pure: no command runs here.

``sbatch_args(spec, …)`` → ``sbatch --parsable`` arguments (``--nodes``, ``--ntasks-per-node=1``,
``--gpus-per-node`` or ``--gres``, ``--cpus-per-task``, ``--mem``, ``--time``,
``--signal=B:TERM@<grace>``, ``--requeue``, ``--output``, the job file's account, partition and
QOS); ``batch_script(…)`` → the script whose ``srun`` starts tuxai's shim once on every node
(``executor.slurm_node``: the launch contract from ``SLURM_JOB_NODELIST``, the port
``model.launch.preferred_port``). ``squeue --json`` → ``SlurmJob``s; Slurm's job states →
``JobState``; its pending reasons (Priority, Resources, QOSMaxGRESPerUser, …) → words.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from tuxai.errors import UsageError
from tuxai.model.job import JobSpec, JobState
from tuxai.model.resources import WHOLE_GPU_MILLI, Allocation

CLUSTER_NODE = "slurm"  # a Slurm job's allocation: its ranks' nodes under ``more``, none of the daemon's GPUs
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$")
MAX_SIGNAL_S = 65535  # --signal's @time is at most this many seconds


def slurm_name(text: str, where: str) -> str:
    """An account, partition or QOS name as Slurm takes it ("" for none).

    >>> slurm_name("gpu-a100", "job: partition")
    'gpu-a100'

    Raises:
        UsageError: a name Slurm would not take (spaces, a leading ``-``, a comma …).
    """
    if text and not _NAME.match(text):
        raise UsageError(
            f"{where} must be a Slurm name (letters, digits, _ . + -), got {text!r}", hint="e.g. partition: gpu"
        )
    return text


def slurm_time(seconds: float) -> str:
    """A time limit as ``--time`` takes it, rounded up to the second.

    >>> slurm_time(90), slurm_time(3600.2), slurm_time(2 * 86400 + 61)
    ('00:01:30', '01:00:01', '2-00:01:01')
    """
    total = max(1, math.ceil(seconds))
    days, rest = divmod(total, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock


def _gpus(spec: JobSpec, gres: bool) -> list[str]:
    request = spec.request
    if not request.gpus:
        return []
    if request.gpu_milli < WHOLE_GPU_MILLI or request.gpu_mem_bytes is not None:
        raise UsageError(
            "a share of a GPU (gpu_share, gpu_mem) cannot be asked of Slurm", hint="ask for whole GPUs: gpus: 1"
        )
    kind = request.mig_profile or (request.gpu_types[0].lower() if len(request.gpu_types) == 1 else "")
    if len(request.gpu_types) > 1:
        raise UsageError(f"Slurm takes one GPU type per job, got {'|'.join(request.gpu_types)}", hint="gpu_type: a100")
    count = f"{kind}:{request.gpus}" if kind else str(request.gpus)
    return [f"--gres=gpu:{count}"] if gres else [f"--gpus-per-node={count}"]


def sbatch_args(spec: JobSpec, name: str, output: str, workdir: str, *, gres: bool = False) -> list[str]:
    """``sbatch`` arguments for ``spec`` (the script comes on stdin).

    ``gres``: ask for GPUs as ``--gres=gpu:N`` (clusters without ``--gpus-per-node``).

    >>> sbatch_args(JobSpec(("python", "t.py"), grace_s=30), "tuxai-7.1", "/j/out", "/w")[:4]
    ['--parsable', '--job-name=tuxai-7.1', '--nodes=1', '--ntasks-per-node=1']

    Raises:
        UsageError: what Slurm cannot be asked (a GPU share, several GPU types).
    """
    request = spec.request
    args = [
        "--parsable",
        f"--job-name={name}",
        f"--nodes={spec.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={max(1, request.cpus)}",
        *_gpus(spec, gres),
    ]
    if request.memory_bytes:
        args.append(f"--mem={math.ceil(request.memory_bytes / 2**20)}M")
    if spec.time_limit_s is not None:
        args.append(f"--time={slurm_time(spec.time_limit_s)}")
    args.append(f"--signal=B:TERM@{min(MAX_SIGNAL_S, max(1, math.ceil(spec.grace_s)))}")
    args.append("--requeue" if spec.requeue else "--no-requeue")
    args += [f"--output={output}", "--open-mode=append", f"--chdir={workdir}", "--export=NONE"]
    args += [f"--{key}={getattr(spec, key)}" for key in ("account", "partition", "qos") if getattr(spec, key)]
    return args


def batch_script(python: str, run_dir: str, job: tuple[int, int], nodes: int = 1) -> str:
    """The batch script: tuxai's node runner once on every node; one bad node ends them all.

    Several nodes: ``srun`` starts it on each, and the SIGTERM Slurm sends the batch shell ``grace``
    seconds before the time limit (``--signal=B:TERM@grace``) is passed on to the step's tasks,
    every node's shim (SIGTERM → the job's grace → SIGKILL: the checkpoint contract), not to
    ``srun`` itself (a SIGTERM makes ``srun`` end the step at once). One node: the batch shell
    becomes the node runner (no step to launch), and the SIGTERM reaches its shim directly.
    """
    runner = shlex.join([python, "-m", "tuxai.executor.slurm_node", run_dir])
    head = f"#!/bin/sh\n# tuxai job {job[0]}, attempt {job[1]}: one tuxai shim on each node (executor.slurm_node)\n"
    if nodes == 1:
        return head + f"exec {runner}\n"
    return (
        head
        + "trap 'scancel --signal=TERM \"$SLURM_JOB_ID.0\"' TERM\n"
        + f"srun --kill-on-bad-exit=1 --ntasks-per-node=1 --export=ALL {runner} &\n"
        + "step=$!\n"
        + 'while :; do wait "$step"; code=$?; kill -0 "$step" 2>/dev/null || exit "$code"; done\n'
    )


def parse_sbatch_id(text: str) -> int:
    """``sbatch --parsable``'s answer → the job id (``id;cluster`` on a federation).

    >>> parse_sbatch_id("42\\n"), parse_sbatch_id("43;tuxai\\n")
    (42, 43)

    Raises:
        ValueError: no job id in ``text``.
    """
    head = text.strip().splitlines()[-1].split(";")[0] if text.strip() else ""
    if not head.isdecimal():
        raise ValueError(f"sbatch answered {text.strip()!r}, not a job id")
    return int(head)


_RANGE = re.compile(r"\[([^\]]*)\]")


def expand_hostlist(text: str) -> list[str]:
    """Slurm's compressed host list → the hosts, in order (``scontrol show hostnames``, pure).

    >>> expand_hostlist("n[1-2]"), expand_hostlist("gpu[08-10,12],login1")
    (['n1', 'n2'], ['gpu08', 'gpu09', 'gpu10', 'gpu12', 'login1'])
    """
    hosts: list[str] = []
    for part in re.findall(r"[^,\[]*(?:\[[^\]]*\][^,\[]*)*", text):
        if not part:
            continue
        match = _RANGE.search(part)
        if match is None:
            hosts.append(part)
            continue
        head, tail = part[: match.start()], part[match.end() :]
        for piece in match.group(1).split(","):
            low, _, high = piece.partition("-")
            width = len(low)
            for number in range(int(low), int(high or low) + 1):
                hosts += [f"{head}{number:0{width}d}{rest}" for rest in expand_hostlist(tail) or [""]]
    return hosts


@dataclass(frozen=True)
class SlurmJob:
    """One job as ``squeue --json`` shows it."""

    job_id: int
    state: str  # PENDING, RUNNING, COMPLETED …
    reason: str  # the pending reason (None when it has none)
    nodes: str = ""  # the node list, compressed: n[1-2]
    exit_code: int | None = None  # the batch script's, once it ended
    signal: int | None = None  # the signal that ended it
    user: str = ""
    name: str = ""
    user_id: int | None = None  # whose job it is (Slurm's word: a job is adopted only from its user)
    end_time: float | None = None  # when it ended, once it did (Slurm's clock, not the user's files)
    start_time: float | None = None  # when Slurm started it (its queue time ends here)
    placement: tuple[tuple[str, tuple[int, ...]], ...] = ()  # each node, in rank order, with its GPU indices


def _state(raw: object) -> str:
    if isinstance(raw, list):  # Slurm 23.02 and later: a list of flags, the base state first
        return str(raw[0]) if raw else ""
    return str(raw or "")


def _exit(raw: object) -> tuple[int | None, int | None]:
    """squeue's ``exit_code`` → (exit code, signal): 22.05 gives the wait status (768: exit 3)."""
    if isinstance(raw, dict):  # 23.02+: {"status": …, "return_code": {"number": 1} or 1, "signal": …}
        code = raw.get("return_code")
        code = code.get("number") if isinstance(code, dict) else code
        return (code if isinstance(code, int) else None), None
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None, None
    return (raw >> 8) & 0xFF, (raw & 0x7F) or None


def _number(raw: object) -> float | None:
    """squeue's time: a plain number (22.05) or ``{"set": true, "number": N}`` (23.02 on); 0 or unset: None."""
    if isinstance(raw, Mapping):
        raw = raw.get("number") if raw.get("set", True) and not raw.get("infinite") else None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw < 2**40:
        return None
    return float(raw)


def parse_squeue_json(text: str) -> dict[int, SlurmJob]:
    """``squeue --json`` → its jobs by id.

    >>> parse_squeue_json('{"jobs": [{"job_id": 7, "job_state": "PENDING", "state_reason": "Priority"}]}')[7].reason
    'Priority'

    Raises:
        ValueError: not squeue's JSON.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ValueError("squeue --json answered no jobs list")
    jobs = {}
    for item in data["jobs"]:
        if not isinstance(item, Mapping) or not isinstance(item.get("job_id"), int):
            continue
        jobs[item["job_id"]] = SlurmJob(
            job_id=item["job_id"],
            state=_state(item.get("job_state")),
            reason=str(item.get("state_reason") or "None"),
            nodes=str(item.get("nodes") or ""),
            exit_code=_exit(item.get("exit_code"))[0],
            signal=_exit(item.get("exit_code"))[1],
            user=str(item.get("user_name") or ""),
            name=str(item.get("name") or ""),
            user_id=uid if isinstance(uid := item.get("user_id"), int) and not isinstance(uid, bool) else None,
            end_time=_number(item.get("end_time")),
            start_time=_number(item.get("start_time")),
            placement=_placement(item),
        )
    return jobs


_IDX = re.compile(r"\(IDX:([0-9,\-]*)\)")


def gres_indices(detail: str) -> tuple[int, ...]:
    """One node's ``gres_detail`` → the GPU indices Slurm gave the job there (its choice, not the job's files).

    >>> gres_indices("gpu:fake:2(IDX:0-1)"), gres_indices("gpu:a100:3(IDX:0,2-3)"), gres_indices("gpu:1(IDX:N/A)")
    ((0, 1), (0, 2, 3), ())
    """
    match = _IDX.search(detail)
    indices: list[int] = []
    for piece in match.group(1).split(",") if match else ():
        low, _, high = piece.partition("-")
        if low.isdecimal() and (not high or high.isdecimal()):
            indices += range(int(low), int(high or low) + 1)
    return tuple(indices)


def _placement(item: Mapping[str, object]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """squeue's node list with each node's ``gres_detail`` (both in the job's node order)."""
    hosts = expand_hostlist(str(item.get("nodes") or ""))
    details = item.get("gres_detail")
    details = [str(d) for d in details] if isinstance(details, list) else []
    return tuple((host, gres_indices(details[i]) if i < len(details) else ()) for i, host in enumerate(hosts))


STATES: dict[JobState, tuple[str, ...]] = {
    JobState.PENDING: ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SPECIAL_EXIT"),
    JobState.RUNNING: (
        *("RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED"),
        *("SIGNALING", "STAGE_OUT", "RESIZING", "POWER_UP_NODE"),
    ),
    JobState.SUCCEEDED: ("COMPLETED",),
    JobState.CANCELLED: ("CANCELLED",),
    JobState.TIMEOUT: ("TIMEOUT", "DEADLINE"),
    JobState.PREEMPTED: ("PREEMPTED",),
    JobState.FAILED: ("FAILED", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "REVOKED"),
}
_BY_STATE = {name: state for state, names in STATES.items() for name in names}


def job_state(slurm_state: str) -> JobState:
    """Slurm's job state → tuxai's (an unknown one reads as running: it has not ended as far as we know).

    >>> [job_state(s).value for s in ("PENDING", "COMPLETING", "OUT_OF_MEMORY", "NEW_THING")]
    ['pending', 'running', 'failed', 'running']
    """
    return _BY_STATE.get(slurm_state.upper(), JobState.RUNNING)


REASONS: dict[str, str] = {
    "None": "waiting for Slurm's next scheduling pass",
    "Priority": "jobs of higher priority are ahead of it",
    "Resources": "the nodes, GPUs or memory it asks for are in use",
    "Dependency": "waits for the jobs it depends on",
    "DependencyNeverSatisfied": "the jobs it depends on can never end as it asks",
    "BeginTime": "its start time has not come",
    "JobHeldUser": "held by its user",
    "JobHeldAdmin": "held by an administrator",
    "ReqNodeNotAvail": "a node it needs is down, drained or reserved",
    "NodeDown": "a node it needs is down",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition is inactive",
    "PartitionNodeLimit": "it asks for more nodes than its partition allows",
    "PartitionTimeLimit": "its time limit is longer than its partition allows",
    "PartitionConfig": "its partition is not configured for it (account, QOS or group)",
    "Reservation": "waits for its reservation to start",
    "Licenses": "waits for licenses",
    "BadConstraints": "its constraints can never be met",
    "InvalidAccount": "its account is not valid",
    "InvalidQOS": "its QOS is not valid",
    "QOSMaxGRESPerUser": "its QOS caps the GPUs (GRES) one user may have at once: your other jobs hold them",
    "QOSMaxGRESPerJob": "its QOS caps the GPUs (GRES) one job may have",
    "QOSMaxJobsPerUserLimit": "its QOS caps how many jobs one user may run at once",
    "QOSMaxSubmitJobPerUserLimit": "its QOS caps how many jobs one user may have queued",
    "QOSMaxCpuPerUserLimit": "its QOS caps the CPUs one user may have at once",
    "QOSMaxNodePerUserLimit": "its QOS caps the nodes one user may have at once",
    "QOSMaxWallDurationPerJobLimit": "its time limit is longer than its QOS allows",
    "QOSGrpGRES": "the GPUs (GRES) its QOS allows in all are in use",
    "QOSGrpCpuLimit": "the CPUs its QOS allows in all are in use",
    "QOSGrpNodeLimit": "the nodes its QOS allows in all are in use",
    "QOSResourceLimit": "its QOS's resource limits are reached",
    "AssocGrpGRES": "the GPUs (GRES) its account allows in all are in use",
    "AssocGrpCpuLimit": "the CPUs its account allows in all are in use",
    "AssocMaxJobsLimit": "its account caps how many jobs run at once",
    "AssocGrpJobsLimit": "its account's group caps how many jobs run at once",
    "AssocMaxWallDurationPerJobLimit": "its time limit is longer than its account allows",
    "launch failed requeued held": "its launch failed: Slurm requeued it held",
    "JobArrayTaskLimit": "its array's limit of running tasks is reached",
    "Prolog": "its node's prolog is running",
    "Cleaning": "Slurm is cleaning up its previous run",
}


def pending_words(reason: str) -> str:
    """Slurm's pending reason as tuxai says why a job waits: the reason's words, then Slurm's own name.

    >>> pending_words("QOSMaxGRESPerUser")
    'its QOS caps the GPUs (GRES) one user may have at once: your other jobs hold them (Slurm: QOSMaxGRESPerUser)'
    >>> pending_words("SomethingNew")
    'Slurm says SomethingNew'
    """
    words = REASONS.get(reason)
    return f"{words} (Slurm: {reason})" if words else f"Slurm says {reason}"


def refusal_line(stderr: str) -> str:
    """sbatch's error output → one line (its last ``error:`` line, without the program's prefix).

    >>> refusal_line("sbatch: error: Batch job submission failed: Requested node configuration is not available\\n")
    'Batch job submission failed: Requested node configuration is not available'
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line] or lines or ["no reason given"]
    return errors[-1].split("error:", 1)[-1].strip()


def rank_places(allocation: Allocation | None) -> tuple[str, ...]:
    """A Slurm job's nodes, in rank order, each with the GPUs Slurm gave it there (() for any other job).

    >>> rank_places(Allocation("slurm", more=(Allocation("n1"), Allocation("n2"))))
    ('n1', 'n2')
    """
    if allocation is None or allocation.node != CLUSTER_NODE:
        return ()
    return tuple(a.node + (":" + ",".join(str(g.index) for g in a.gpus) if a.gpus else "") for a in allocation.more)
