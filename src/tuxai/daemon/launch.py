"""An attempt's ``Launch``: the job's environment, its real CPUs, its cgroup and device rules."""

from __future__ import annotations

import os
from collections.abc import Callable

from tuxai.daemon.config import DaemonConfig
from tuxai.executor.cgroups import nvidia_device_rules, plan
from tuxai.executor.environment import JobContext, job_environment, real_cpus
from tuxai.executor.rundir import Launch
from tuxai.model.gpu import Gpu, Vendor
from tuxai.model.job import JobRecord
from tuxai.model.resources import Allocation


def build_launch(
    config: DaemonConfig, job: JobRecord, allocation: Allocation, attempt: int, log_path: str, base: dict[str, str]
) -> Launch:
    """What the shim of this attempt runs and how: environment, CPUs, cgroup, limits, user.

    ``base``: the environment the job was submitted from.
    """
    inventory = config.inventory
    gpus = {g.index: g for g in inventory.gpus}
    first = gpus.get(allocation.gpus[0].index) if allocation.gpus else None
    context = JobContext(
        job_id=job.id,
        attempt=attempt,
        checkpoint_dir=str(config.home / "jobs" / str(job.id) / "checkpoint"),
        vendor=first.vendor if first else None,
        env_path=job.spec.env_path,
    )
    env = job_environment(
        base,
        dict(job.spec.exports),
        allocation,
        context,
        first.memory_total_bytes if first else None,
    )
    support = config.cgroups
    cgroup = {}
    devices: tuple[str, ...] = ()
    if support.version and support.device_rules:
        devices = device_rules(allocation, gpus)
    # A cgroup costs ~15 ms to make on v1 (the memory controller): made when there is a
    # limit to enforce; CPU pinning already holds a job to its CPUs.
    wanted = bool(job.spec.request.memory_bytes or devices or config.cgroup_every_job)
    if support.version and wanted:
        # The devices controller only when there are device files to fence (a real NVIDIA box).
        parents = {c: p for c, p in support.parents.items() if c != "devices" or devices}
        cgroup = plan(support.version, parents, f"job-{job.id}-{attempt}")
    request = job.spec.request
    return Launch(
        job_id=job.id,
        attempt=attempt,
        command=job.spec.command,
        env=env,
        cwd=job.spec.workdir,
        log_path=log_path,
        cpus=real_cpus(allocation.cpus, config.online_cpus),
        memory_limit_bytes=request.memory_bytes,
        cpu_quota=request.cpus if cgroup else 0,
        time_limit_s=job.spec.time_limit_s,
        grace_s=job.spec.grace_s,
        user=(job.uid, job.gid, job.groups),
        cgroup=cgroup,
        devices=devices,
        notify_socket=config.notify_socket,
    )


def device_rules(
    allocation: Allocation, gpus: dict[int, Gpu], exists: Callable[[str], bool] = os.path.exists
) -> tuple[str, ...]:
    """cgroup v1 rules that let a job open only its own ``/dev/nvidiaN`` (and the control devices).

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
    return tuple(nvidia_device_rules(minors)) if minors else ()
