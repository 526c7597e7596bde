"""Checks of what jobs will get on this host: cgroups for their limits, pip settings for their envs."""

from __future__ import annotations

from collections.abc import Iterator

from tuxai.doctor.findings import Finding, Severity
from tuxai.envs import PipSettings, describe
from tuxai.hardware.cgroups import CgroupSupport


def check_cgroups(support: CgroupSupport) -> Iterator[Finding]:
    """Memory and CPU limits (and OOM detection) need a cgroup tuxai may create."""
    if support.version == 0:
        yield Finding(
            "jobs.cgroups_unavailable",
            Severity.WARN,
            f"jobs cannot be put in cgroups: {support.problem}; --mem limits and OOM detection are off",
            "run the daemon as root, or give it a delegated cgroup (systemd: Delegate=yes, see packaging/)",
        )
        return
    where = ", ".join(f"{c} {p}" for c, p in sorted(support.parents.items()))
    if support.systemd:
        message = (
            f"jobs get systemd transient scopes on cgroup v2 (path: systemd, under {where}): memory, CPUs, "
            "tasks and the GPU device policy are enforced by systemd"
        )
    elif support.version == 2:
        message = (
            f"jobs get cgroup v2 groups written by tuxai (path: cgroupfs v2, {where}): memory, CPU and task "
            "limits; GPUs are given by CUDA_VISIBLE_DEVICES only (device fencing on v2 needs systemd)"
        )
    else:
        fence = (
            "; a job may open only its own /dev/nvidiaN (v1 device rules)"
            if support.device_rules
            else "; GPUs are given by CUDA_VISIBLE_DEVICES only (device rules need cgroup v1's devices controller)"
        )
        message = f"jobs get cgroup v1 memory, CPU and task limits (path: cgroupfs v1, {where}){fence}"
    yield Finding("jobs.cgroups", Severity.OK, message)


def check_job_envs(settings: PipSettings) -> Iterator[Finding]:
    """Which package sources `--env` builds will use (uv, given pip's settings)."""
    lines = describe(settings)
    if not lines:
        yield Finding("jobs.envs", Severity.OK, "job environments (--env) install from PyPI (no pip settings)")
        return
    yield Finding("jobs.envs", Severity.OK, "job environments (--env) use pip's settings: " + "; ".join(lines))


def jobs_findings(cgroups: CgroupSupport, pip: PipSettings) -> list[Finding]:
    """Both checks."""
    return [*check_cgroups(cgroups), *check_job_envs(pip)]
