"""Checks of what container jobs (``image:``) need here: podman, a runtime that works on this
host's cgroups, and CDI specs that name exactly the GPUs NVML sees (stale after a driver upgrade)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tuxai.doctor.findings import Finding, Severity
from tuxai.hardware.containers import ContainerHost
from tuxai.model.container import NVIDIA_KIND, SUBID_REMEDY, choose_runtime
from tuxai.model.gpu import Gpu, Vendor

CDI_REMEDY = "generate it: nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml (again after each driver upgrade)"


def check_podman(host: ContainerHost) -> Iterator[Finding]:
    """podman present, and which runtime tuxai gives it here."""
    if not host.podman_version:
        yield Finding(
            "containers.podman",
            Severity.WARN,
            "podman is not installed: jobs with an image (--image) cannot start",
            "apt-get install --no-install-recommends podman runc",
        )
        return
    runtime = choose_runtime(host.cgroup_version, host.hybrid, host.runtimes)
    if not runtime:
        yield Finding(
            "containers.runtime",
            Severity.WARN,
            f"podman {host.podman_version} has no OCI runtime (neither runc nor crun is installed)",
            "apt-get install runc" if host.cgroup_version == 1 else "apt-get install crun",
        )
        return
    why = ""
    if runtime == "runc" and "crun" in host.runtimes:
        mode = "a hybrid cgroup v1 host" if host.hybrid else "cgroup v1"
        why = f'; crun refuses {mode} ("cgroups in hybrid mode not supported"), so tuxai passes --runtime=runc'
    yield Finding("containers.podman", Severity.OK, f"podman {host.podman_version}, runtime {runtime}{why}")


def _names(gpu: Gpu) -> list[str]:
    """What a CDI spec may call a GPU: its UUID, its index, its MIG instances' UUIDs."""
    return [n for n in (gpu.uuid, str(gpu.index), *(m.uuid for m in gpu.mig_devices)) if n]


def check_cdi(host: ContainerHost, gpus: Sequence[Gpu]) -> Iterator[Finding]:
    """Every GPU named by a CDI spec (never "all" alone), and no NVIDIA UUID that NVML does not see."""
    for problem in host.cdi_problems:
        yield Finding("containers.cdi_unreadable", Severity.WARN, f"a CDI spec cannot be read: {problem}", CDI_REMEDY)
    if not gpus:
        return
    named = {name for spec in host.cdi_specs for name in spec.devices}
    missing = [g for g in gpus if not (set(_names(g)) & named)]
    if not host.cdi_specs:
        yield Finding(
            "containers.cdi_missing",
            Severity.WARN,
            f"no CDI spec in /etc/cdi or /var/run/cdi: container jobs cannot be given their {len(gpus)} GPU(s)",
            CDI_REMEDY,
        )
        return
    if missing:
        listed = ", ".join(g.uuid or str(g.index) for g in missing)
        yield Finding("containers.cdi_stale", Severity.WARN, f"no CDI spec names GPU {listed}", CDI_REMEDY)
    seen = {n for g in gpus for n in _names(g)}
    nvidia = [s for s in host.cdi_specs if s.kind == NVIDIA_KIND]
    unknown = sorted(n for s in nvidia for n in s.devices if n.startswith(("GPU-", "MIG-")) and n not in seen)
    if unknown and any(g.vendor is Vendor.NVIDIA for g in gpus):
        yield Finding(
            "containers.cdi_stale",
            Severity.WARN,
            f"the CDI spec names GPUs NVML does not see ({', '.join(unknown)}): written before a GPU or driver change",
            CDI_REMEDY,
        )
    if not missing and not unknown:
        kinds = ", ".join(sorted({s.kind for s in host.cdi_specs}))
        yield Finding("containers.cdi", Severity.OK, f"CDI specs ({kinds}) name each of the {len(gpus)} GPU(s)")


def check_rootless(host: ContainerHost) -> Iterator[Finding]:
    """tuxai run as a user (its own daemon): its podman is rootless, which needs the user's subordinate
    ids to unpack an image, and on cgroup v1 ignores a container's limits (measured here: docs/containers.md)."""
    if not host.rootless_user or not host.podman_version:
        return
    user = host.rootless_user
    if not all(host.subids):
        files = " and ".join(f for f, ok in zip(("/etc/subuid", "/etc/subgid"), host.subids, strict=True) if not ok)
        yield Finding(
            "containers.rootless",
            Severity.WARN,
            f"podman runs rootless as {user}, who has no range of 65536 ids in {files}: no image can be unpacked "
            "(podman: potentially insufficient UIDs or GIDs), so its container jobs cannot start",
            SUBID_REMEDY.format(user=user),
        )
    elif host.cgroup_version == 1:
        yield Finding(
            "containers.rootless",
            Severity.WARN,
            f"podman runs rootless as {user} on cgroup v1: it ignores a container's limits (memory, CPU, tasks), "
            "so a container job's limits are only those of the daemon's own groups",
            "boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1), or run the system daemon as root",
        )
    else:
        yield Finding("containers.rootless", Severity.OK, f"podman runs rootless as {user}, with its subordinate ids")


def container_findings(host: ContainerHost, gpus: Sequence[Gpu]) -> list[Finding]:
    """The checks: podman and its runtime, a rootless podman's needs, the CDI specs."""
    return [*check_podman(host), *check_rootless(host), *check_cdi(host, gpus)]
