"""A job in an OCI image: the ``podman run`` line the shim starts in place of the bare command.

The shim stays the job's runner (its lock, claim, status, grace, logs): it starts
``podman run`` attached, as root, inside the job's groups, and podman puts the container's
own groups under the job's (``--cgroup-parent``), so the job's memory limit, its OOM count,
its CPU time and its kill reach the container. The container gets:

* its GPUs by CDI name only (``Container.cdi_devices``, from the scheduler's allocation);
* ``/dev/shm`` sized for training (``Container.shm_bytes``);
* the working directory and the checkpoint directory mounted at the same paths, and the job's
  endpoint file (a model server in the image writes its URL there, ``submit --serve --image``);
* a served model read-only at its own path (under a root daemon: opened by the user, bound by descriptor);
* a GPU share (an MPS client): the host's IPC and the MPS pipe directory, only where it is root's
  through no link (``userdir.open_trusted``) and bound by descriptor (U1), else the attempt fails;
* the submitting user inside (``--user UID:GID`` and its groups; rootless: ``--userns=keep-id``);
* for another user's job, only an image root's podman already has (``--pull=never``): root's
  registry credentials never pull on a user's behalf (security issue S3);
* the job's variables through an env file in the run directory (0600): never on the command
  line (``/proc/PID/cmdline`` is world-readable), and podman itself runs with a clean
  environment, so a job's ``CONTAINERS_CONF`` or ``TMPDIR`` never steers root's podman;
* this process's open-file and process limits (``--ulimit``: podman's defaults need
  CAP_SYS_RESOURCE, which root lacks in some sandboxes).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tuxai.errors import UsageError
from tuxai.executor import userdir
from tuxai.executor.rundir import CHECKPOINT, ENDPOINT, Launch
from tuxai.model.cgroup import CgroupPlan
from tuxai.model.container import Container, check_image, check_model

ENV_FILE = "container.env"
MPS_PIPES = "/tmp/nvidia-mps"  # the MPS server's default CUDA_MPS_PIPE_DIRECTORY
CGROUP_ROOT = Path("/sys/fs/cgroup")
PODMAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_ONLY = frozenset({"PATH", "HOME", "HOSTNAME", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "LD_LIBRARY_PATH"})
"""Variables that name the host's own places: the image's own (or none) hold inside."""


@dataclass(frozen=True)
class Limits:
    """The ``--ulimit`` values the container gets: (soft, hard) open files and processes."""

    nofile: tuple[int, int]
    nproc: tuple[int, int]


def current_limits(pid_max_path: Path = Path("/proc/sys/kernel/pid_max")) -> Limits:
    """This process's RLIMIT_NOFILE, and RLIMIT_NPROC capped at ``kernel.pid_max``: runc could not
    set 96364 processes where pid_max is 32768 (EPERM), and no more processes can exist anyway."""
    try:
        pid_max = int(pid_max_path.read_text())
    except (OSError, ValueError):
        pid_max = 32768
    nproc = tuple(
        pid_max if v == resource.RLIM_INFINITY else min(v, pid_max) for v in resource.getrlimit(resource.RLIMIT_NPROC)
    )
    return Limits(resource.getrlimit(resource.RLIMIT_NOFILE), (nproc[0], nproc[1]))


def cgroup_parent(cgroup: CgroupPlan) -> str:
    """The job's group as podman's ``--cgroup-parent`` (relative to its hierarchy's root): the
    memory group's on v1, where the limit and the OOM count live; "" without groups.

    >>> v1 = {"pids": "/sys/fs/cgroup/pids/tuxai/j", "memory": "/sys/fs/cgroup/memory/a/tuxai/j"}
    >>> cgroup_parent(CgroupPlan(1, v1))
    '/a/tuxai/j'
    """
    if not cgroup or cgroup.systemd is not None:
        return ""
    for controller in ("memory", "unified", "pids", *cgroup.dirs):
        if controller in cgroup.dirs:
            path = Path(cgroup.dirs[controller]).relative_to(CGROUP_ROOT)
            return "/" + str(Path(*path.parts[1:])) if cgroup.version == 1 else "/" + str(path)
    return ""


def container_name(run_dir: Path) -> str:
    """The container's name: its job and attempt, and a tag of the run directory (unique per home).

    >>> container_name(Path("/var/lib/tuxai/jobs/12.3/run-2"))
    'tuxai-12-2-98eb5d38'
    """
    job = run_dir.parent.name.partition(".")[0]
    number = run_dir.name.removeprefix("run-")
    return f"tuxai-{job}-{number}-{hashlib.sha256(str(run_dir).encode()).hexdigest()[:8]}"


def env_file_text(env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """The job's variables as podman's ``--env-file`` reads them, and the names it cannot carry
    (a newline in the value; host-only names such as PATH).

    >>> env_file_text({"A": "1", "PATH": "/x", "F": "a\\nb"})
    ('A=1\\n', ('F', 'PATH'))
    """
    lines, dropped = [], []
    for name, value in sorted(env.items()):
        if name in HOST_ONLY or "\n" in value or "\n" in name or name.startswith("#"):
            dropped.append(name)
        else:
            lines.append(f"{name}={value}\n")
    return "".join(lines), tuple(dropped)


def _ulimit(name: str, limit: tuple[int, int]) -> str:
    soft, hard = (-1 if v == resource.RLIM_INFINITY else v for v in limit)
    return f"{name}={soft}:{hard}"


@dataclass(frozen=True)
class Host:
    """What the podman line depends on outside the launch: limits, rootless, an attached stdin or terminal."""

    limits: Limits
    rootless: bool = False
    stdin: bool = False  # an interactive job (tuxai run): its input goes in (-i)
    tty: bool = False  # … on a terminal (-t)
    workdir_source: str = ""  # where the working directory is mounted from ("": its own path; S10: userdir.bind)
    model_source: str = ""  # where a served model is mounted from ("": its own path; userdir.bind_model)
    endpoint: bool = True  # the job's endpoint file is there to mount (the shim makes it before podman starts)
    mps_source: str = ""  # where a GPU share's MPS pipe directory is mounted from (U1: checked, bound; "": refused)


def run_argv(launch: Launch, container: Container, run_dir: Path, host: Host) -> list[str]:
    """``podman … run …`` up to and including the image; the job's command follows it."""
    argv = ["podman"]
    if container.runtime:
        argv.append(f"--runtime={container.runtime}")
    parent = cgroup_parent(launch.cgroup)
    if parent:
        argv.append("--cgroup-manager=cgroupfs")
    argv += ["run", "--rm", f"--name={container_name(run_dir)}", "--network=host", "--log-driver=none"]
    if parent:
        argv.append(f"--cgroup-parent={parent}")
    argv += ["--ulimit", _ulimit("nofile", host.limits.nofile), "--ulimit", _ulimit("nproc", host.limits.nproc)]
    argv += ["-i"] * host.stdin + ["-t"] * host.tty
    argv += _ipc(launch.env, container, host.mps_source)
    if host.rootless:
        argv.append("--userns=keep-id")
    elif launch.user is not None:
        uid, gid, groups = launch.user
        argv.append(f"--user={uid}:{gid}")
        argv += [f"--group-add={g}" for g in groups if g != gid]
        if uid != 0:  # a user's job gets no capability, and a setuid file in its image cannot give one
            argv += ["--cap-drop=all", "--security-opt=no-new-privileges"]
            argv.append("--pull=never")  # only images root's podman has: never a pull with root's credentials
    argv += [f"--device={name}" for name in container.cdi_devices]
    argv.append(f"--env-file={run_dir / ENV_FILE}")
    sources = {launch.cwd: host.workdir_source} if launch.cwd and host.workdir_source else {}
    argv += [f"--volume={sources.get(path, path)}:{path}" for path in _mounts(launch, container, host.endpoint)]
    if container.model:
        argv.append(f"--volume={host.model_source or check_model(container.model)}:{container.model}:ro")
    if launch.cwd:
        argv.append(f"--workdir={launch.cwd}")
    check_image(container.image, launch.cwd)  # also here: launch.json is the shim's only input
    argv.append(container.image)
    return argv


def _ipc(env: Mapping[str, str], container: Container, mps_source: str) -> list[str]:
    """/dev/shm sized for training; a slice of a shared GPU (an MPS client) shares the host's IPC
    and the MPS server's pipe directory instead, as MPS needs (not yet run on a GPU), from where
    ``mps_pipes`` checked it (never a path from the job's variables, never one left unchecked: U1)."""
    if not is_share(env):
        return [f"--shm-size={container.shm_bytes}"]
    if not mps_source:
        raise UsageError(f"MPS pipe directory {MPS_PIPES}: not checked, not mounted")
    return ["--ipc=host", f"--volume={mps_source}:{MPS_PIPES}"]


def is_share(env: Mapping[str, str]) -> bool:
    """The job runs on a slice of a shared GPU (an MPS client: ``executor.environment`` set its percentage)."""
    return "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" in env


def mps_pipes(name: str) -> str:
    """Where the MPS pipe directory is mounted from for container ``name``: root's podman, a bind of the
    directory as ``userdir.open_trusted`` opened it (root's, through no link: a folder or a link another
    user put at that path is never mounted, U1); a rootless podman, the path once checked (root's or its own).

    Raises:
        SubprocessError: it is not there, a link, another user's or writable by others (one line).
    """
    what = "MPS pipe directory"
    if host_rootless():
        os.close(userdir.open_trusted(MPS_PIPES, what, frozenset({0, os.getuid()})))
        return MPS_PIPES
    return str(userdir.bind_trusted(MPS_PIPES, name, what))


def _mounts(launch: Launch, container: Container, endpoint: bool) -> list[str]:
    """The directories the job sees at the same paths: its working directory, its checkpoint directory
    (a Slurm node's is in ``container.mounts``: the node's launch names no job directory)."""
    paths = [launch.cwd] if launch.cwd else []
    if launch.job_dir:  # the daemon's directory (0711): the user can swap nothing in it
        paths += [str(Path(launch.job_dir) / CHECKPOINT), *[str(Path(launch.job_dir) / ENDPOINT)] * endpoint]
    return list(dict.fromkeys([*paths, *container.mounts]))


def host_rootless() -> bool:
    """podman runs as a user here (a user's own daemon), not as root."""
    return os.getuid() != 0


ROOTLESS_PLACES = ("HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
"""Where a rootless podman finds its user's store and settings: the daemon's user's own (this process's)."""


def podman_environment() -> dict[str, str]:
    """The environment podman itself runs with: nothing of the job's (module docstring); a rootless podman
    also its own user's places (this process's, never the job's variables)."""
    own = {k: v for k, v in os.environ.items() if k in ROOTLESS_PLACES} if host_rootless() else {}
    return {"PATH": PODMAN_PATH, "LANG": "C.UTF-8", **own}


def prepare(
    launch: Launch, container: Container, run_dir: Path, stdin: bool = False, tty: bool = False
) -> tuple[list[str], tuple[str, ...]]:
    """Write the env file (0600, in the run directory) and return podman's line and the variables left out."""
    text, dropped = env_file_text(launch.env)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(run_dir / ENV_FILE, flags, 0o600), "w") as handle:
        handle.write(text)
    source = model = ""
    try:
        if launch.user is not None and launch.user[0] != 0 and not host_rootless():
            # root's podman mounts what the user entered or read, by descriptor: never a path read again (S10)
            if launch.cwd:
                source = str(userdir.bind(launch.user, launch.cwd, container_name(run_dir)))
            if container.model:
                model = str(userdir.bind_model(launch.user, check_model(container.model), container_name(run_dir)))
        endpoint = bool(launch.job_dir) and os.path.isfile(Path(launch.job_dir) / ENDPOINT)
        mps = mps_pipes(container_name(run_dir)) if is_share(launch.env) else ""
        host = Host(current_limits(), host_rootless(), stdin, tty, source, model, endpoint, mps)
        return run_argv(launch, container, run_dir, host), dropped
    except (UsageError, subprocess.SubprocessError) as exc:  # the shim records it as the reason the job could not start
        userdir.unbind(container_name(run_dir))
        raise subprocess.SubprocessError(str(exc)) from None


def remove_groups(cgroup: CgroupPlan, roots: Sequence[Path] | None = None) -> None:
    """Remove the groups podman made under the job's path in every hierarchy (bottom up; best effort).

    runc makes the ``--cgroup-parent`` path in every controller, also those the job had no group in.
    """
    parent = cgroup_parent(cgroup)
    if not parent:
        return
    hierarchies = roots if roots is not None else [p for p in CGROUP_ROOT.iterdir() if p.is_dir()]
    for root in hierarchies:
        top = root / parent.lstrip("/")
        if not top.is_dir():
            continue
        for directory, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(directory)


def remove_container(run_dir: Path) -> None:
    """``podman rm --force`` the attempt's container (best effort): ``--rm`` is podman's, and a
    job killed after its grace took podman's own processes with it. Its working directory's bind goes too."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["podman", "rm", "--force", "--time=0", container_name(run_dir)],
            env=podman_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
    userdir.unbind(container_name(run_dir))
