"""The VM tier's jobs, run by the tuxai daemon in the guest: ``python3 job.py memory|cpu-set|gpu-device``.

Each prints JSON lines: where the job runs (its cgroup) and what it could use.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import sys

with open("/proc/self/cgroup") as _own:
    CGROUP = _own.read().strip().rpartition(":")[2]  # v2: "0::/path"


def cgroup_file(name: str) -> str | None:
    """A file of the job's own cgroup, or None where the controller is off."""
    try:
        with open(f"/sys/fs/cgroup{CGROUP}/{name}") as handle:
            return handle.read().strip()
    except OSError:
        return None


def say(**facts: object) -> None:
    """One JSON line on stdout, flushed (a killed job keeps what it said)."""
    print(json.dumps({"cgroup": CGROUP, **facts}), flush=True)


def memory() -> None:
    """Say the limits, then fill 200 MiB: under a 64 MiB limit the kernel kills the job first."""
    with open("/proc/self/oom_score_adj") as handle:
        oom_score_adj = handle.read().strip()
    memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    say(memory_max=cgroup_file("memory.max"), oom_score_adj=oom_score_adj, memlock=memlock)
    hog = b"x" * (200 << 20)
    say(allocated=len(hog))


def cpu_set() -> None:
    """Try to widen the affinity to every CPU: a cgroup CPU set keeps the job on its own."""
    before = sorted(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
        widen = "allowed"
    except OSError as exc:
        widen = exc.strerror or str(exc)
    after = sorted(os.sched_getaffinity(0))
    say(
        before=before,
        widen=widen,
        after=after,
        cpu_count=os.cpu_count(),
        effective=cgroup_file("cpuset.cpus.effective"),
    )


def gpu_device() -> None:
    """Open every NVIDIA device node: ENXIO where the device policy lets the job in (no driver), EPERM where not."""
    opened = {}
    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        try:
            os.close(os.open(f"/dev/{name}", os.O_RDWR))
            opened[name] = "opened"
        except OSError as exc:
            opened[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    say(open=opened, cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))


if __name__ == "__main__":
    {"memory": memory, "cpu-set": cpu_set, "gpu-device": gpu_device}[sys.argv[1]]()
