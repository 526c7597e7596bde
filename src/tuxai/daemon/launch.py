"""An attempt's ``Launch``: the job's environment, its real CPUs, its cgroup and device rules.

``prepare_attempt`` hands it to the executor, which decides where it lives (``executor.attempt``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tuxai.daemon.arrays import array_environment
from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.containers import container_for
from tuxai.daemon.gang import local_node_launch
from tuxai.executor.attempt import AttemptHandle, AttemptTaken, Executor
from tuxai.executor.cgroups import nvidia_device_rules
from tuxai.executor.environment import JobContext, job_environment, real_cpus
from tuxai.executor.group_plan import limited as enforced
from tuxai.executor.group_plan import plan_groups
from tuxai.executor.local import cgroup_name
from tuxai.executor.rundir import CHECKPOINT, ENDPOINT, Launch
from tuxai.model.gpu import Gpu, Vendor
from tuxai.model.job import JobRecord
from tuxai.model.resources import Allocation


def prepare_attempt(
    executor: Executor, config: DaemonConfig, job: JobRecord, allocation: Allocation, log: str, base: dict[str, str]
) -> tuple[int, AttemptHandle]:
    """The job's next attempt, described and prepared (nothing runs yet): its number and handle.

    The number is the store's next one, or a later one when the executor already has that
    attempt (its record erased by a power cut after it was prepared): never reused.
    """
    attempt = job.attempt + 1
    while True:
        try:
            return attempt, executor.prepare(build_launch(config, job, allocation, attempt, log, base))
        except AttemptTaken:
            attempt += 1


def build_launch(
    config: DaemonConfig, job: JobRecord, allocation: Allocation, attempt: int, log_path: str, base: dict[str, str]
) -> Launch:
    """What the shim of this attempt runs and how: environment, CPUs, cgroup, limits, user.

    ``base``: the environment the job was submitted from.
    """
    inventory = config.inventory
    gpus = {g.index: g for g in inventory.gpus}
    first = gpus.get(allocation.gpus[0].index) if allocation.gpus else None
    job_dir = Path(log_path).parent
    context = JobContext(
        job_id=job.id,
        attempt=attempt,
        checkpoint_dir=str(job_dir / CHECKPOINT),
        vendor=first.vendor if first else None,
        env_path=job.spec.env_path,
        endpoint_file=str(job_dir / ENDPOINT),
    )
    env = job_environment(
        base,
        dict(job.spec.exports),
        allocation,
        context,
        first.memory_total_bytes if first else None,
    )
    env.update(array_environment(job))  # TUXAI_ARRAY_INDEX … for a task of an array
    node = local_node_launch(job, allocation, attempt)  # a gang's MASTER_ADDR, PET_* …; torchrun's line
    env.update(node.env)
    support, request = config.cgroups, job.spec.request
    limited = enforced(request.memory_bytes, config.cgroup_every_job)
    cpus = real_cpus(allocation.cpus, config.online_cpus)
    minors = gpu_minors(allocation, gpus) if support.version and support.device_rules else ()
    name = cgroup_name(config.home, job.id, attempt)
    limits = (request.memory_bytes, request.cpus, cpus, config.job_pids_max)  # executor.group_plan: the one rule
    cgroup, devices = plan_groups(support, name, limited, limits, minors, _proc_devices)
    return Launch(
        job_id=job.id,
        attempt=attempt,
        command=node.command,
        env=env,
        cwd=job.spec.workdir,
        log_path=log_path,
        cpus=cpus,
        memory_limit_bytes=request.memory_bytes,
        cpu_quota=request.cpus if cgroup and limited else 0,
        time_limit_s=job.spec.time_limit_s,
        grace_s=job.spec.grace_s,
        user=(job.uid, job.gid, job.groups),
        cgroup=cgroup,
        devices=devices,
        notify_socket=config.notify_socket,
        job_dir=str(job_dir),
        pids_max=config.job_pids_max,
        session=job.spec.session,
        container=container_for(job.spec, allocation),
    )


def gpu_minors(
    allocation: Allocation, gpus: dict[int, Gpu], exists: Callable[[str], bool] = os.path.exists
) -> tuple[int, ...]:
    """The minor numbers of the job's ``/dev/nvidiaN``, to fence it to them (v1 device rules, systemd).

    Only for NVIDIA GPUs whose minor numbers are known and whose device files exist (a real
    box, not a simulated one); otherwise none: the job is then held to its GPUs by
    ``CUDA_VISIBLE_DEVICES`` alone.
    """
    minors = []
    for share in allocation.gpus:
        gpu = gpus.get(share.index)
        if gpu is None or gpu.vendor is not Vendor.NVIDIA or gpu.minor_number is None:
            return ()
        if not exists(f"/dev/nvidia{gpu.minor_number}"):
            return ()
        minors.append(gpu.minor_number)
    return tuple(minors)


def device_rules(
    allocation: Allocation, gpus: dict[int, Gpu], exists: Callable[[str], bool] = os.path.exists
) -> tuple[str, ...]:
    """cgroup v1 rules that let a job open only its own ``/dev/nvidiaN`` (and the control devices)."""
    minors = gpu_minors(allocation, gpus, exists)
    return tuple(nvidia_device_rules(list(minors))) if minors else ()


def _proc_devices() -> str:
    try:
        return Path("/proc/devices").read_text()
    except OSError:
        return ""
