"""A job in an OCI image: what the container gets, and the GPUs it gets by CDI name only.

``Container`` travels in ``launch.json`` (the daemon fills it, the shim runs podman with it;
``executor.podman`` writes podman's line). GPUs go in as CDI device names taken from the
scheduler's allocation and the CDI specs on this host (``cdi_names``): a GPU's UUID (a MIG
instance's UUID) when a spec names it so, else its index — never ``all``. A CDI spec is
what ``nvidia-ctk cdi generate`` writes to /etc/cdi (or /var/run/cdi), JSON or YAML:

    cdiVersion: 0.5.0
    kind: nvidia.com/gpu
    devices:
      - name: "0"
        containerEdits: {deviceNodes: [{path: /dev/nvidia0}]}

Pure but for ``read_cdi_specs``, the one reader of the spec files (the doctor, the daemon and a Slurm
node all read them; the executor may not import ``hardware``, so the reader lives below both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tuxai.errors import UsageError
from tuxai.model.resources import Allocation

DEFAULT_SHM_BYTES = 8 << 30
"""/dev/shm of a container job unless the job says otherwise: podman's 64 MiB crashes DataLoader
workers. A tmpfs: only what is written takes memory (charged to the job's memory limit)."""

CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
"""Where podman reads CDI specs (later directories win on a name both have)."""

NVIDIA_KIND = "nvidia.com/gpu"

LOCAL = "localhost/"
"""podman's prefix for an image no registry holds (``tuxai image build``'s, or one podman built or loaded)."""


@dataclass(frozen=True)
class Container:
    """How the shim runs a job in an image: which image, its /dev/shm, its GPUs (CDI names), which runtime."""

    image: str
    shm_bytes: int = DEFAULT_SHM_BYTES
    cdi_devices: tuple[str, ...] = ()  # kind=name, e.g. nvidia.com/gpu=GPU-1b2c…
    runtime: str = ""  # podman's --runtime ("": podman's default)
    error: str = ""  # why it cannot run here (a GPU no CDI spec names): the shim fails the attempt with it
    model: str = ""  # a served model (file or repository), mounted read-only at its own path; "": none
    mounts: tuple[str, ...] = ()  # more directories at their own paths, tuxai's (a Slurm node's checkpoint directory)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``launch.json``)."""
        return {"image": self.image, "shm_bytes": self.shm_bytes, "cdi_devices": list(self.cdi_devices),
                "runtime": self.runtime, "error": self.error, "model": self.model,
                "mounts": list(self.mounts)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Container | None:
        """The container back from its JSON form (None: not a container job).

        >>> Container.from_dict({"image": "py:1", "cdi_devices": ["a.b/gpu=0"]}).cdi_devices
        ('a.b/gpu=0',)
        """
        if not data:
            return None
        return cls(
            str(data["image"]),
            int(data.get("shm_bytes", DEFAULT_SHM_BYTES)),
            tuple(str(d) for d in data.get("cdi_devices", ())),
            str(data.get("runtime", "")),
            str(data.get("error", "")),
            str(data.get("model", "")),
            tuple(str(m) for m in data.get("mounts", ())),
        )


_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?:{_HOST}(?:\.{_HOST})*(?::[0-9]+)?/)?{_PATH}(?:/{_PATH})*"  # [DOMAIN[:PORT]/]NAME
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # :TAG
    r"(?:@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-f]{32,})?"  # @sha256:DIGEST
)
"""A registry reference as distribution's grammar has it (``fullmatch``: nothing before or after)."""

TRANSPORTS = frozenset(
    {"atomic", "containers-storage", "dir", "docker", "docker-archive", "docker-daemon", "oci", "oci-archive",
     "ostree", "sif", "tarball"}
)  # fmt: skip
"""containers-image's transports: ``oci-archive:/path`` would have root's podman read any path, a
daemon's or another store's image. podman takes a reference as one when it starts ``NAME:``."""


def check_image(reference: str, workdir: str = "") -> str:
    """An image reference as a job may give it: it goes on podman's command line before the
    job's command, so it can never be read as a flag (``--privileged``), nor as a transport
    (``oci-archive:/root/x.tar``: a path root's podman would read, security issue S3); and the working
    directory, mounted with ``--volume=DIR:DIR``, holds no ``:`` or ``,`` that podman would
    read as more of the mount.

    >>> check_image("localhost/tuxai/train:3f2a9c01d4e5b6a7")
    'localhost/tuxai/train:3f2a9c01d4e5b6a7'

    Raises:
        UsageError: naming the field.
    """
    if ":" in reference and reference.partition(":")[0].lower() in TRANSPORTS:
        raise UsageError(
            f"image {reference!r} names a transport ({reference.partition(':')[0]}:), not an image reference",
            hint="name the image: NAME[:TAG] or REGISTRY/NAME[:TAG], e.g. docker.io/library/python:3.12",
        )
    if len(reference) > 512 or not _REFERENCE.fullmatch(reference):
        raise UsageError(
            f"image {reference!r} is not an image reference",
            hint="NAME[:TAG] or NAME@sha256:DIGEST, e.g. localhost/tuxai/train:3f2a9c01 (tuxai image ls)",
        )
    if any(c in workdir for c in ":,"):
        raise UsageError(
            f"workdir {workdir!r}: a container job's working directory is mounted and cannot hold ':' or ','",
            hint="run from a directory without them, or give --workdir",
        )
    return reference


def check_model(path: str) -> str:
    """A served model's path as a container job may give it (``submit --serve MODEL --image``): absolute,
    normalised, and without ``:`` or ``,``, which podman's ``--volume=SRC:PATH:ro`` would read as more of the mount.

    >>> check_model("/srv/models/mlp.onnx")
    '/srv/models/mlp.onnx'

    Raises:
        UsageError: naming the field.
    """
    if not path.startswith("/") or any(c in path for c in ":,\n") or "/./" in f"{path}/" or "/../" in f"{path}/":
        raise UsageError(
            f"model {path!r}: a served model is mounted at its own path: absolute, without ':', ',' or '..'",
            hint="give the model's absolute path (tuxai submit --serve resolves it), or move it",
        )
    return path


@dataclass(frozen=True)
class CdiSpec:
    """One CDI spec file: its kind (``vendor/class``) and the names of its devices."""

    kind: str
    devices: tuple[str, ...]
    path: str = ""


def parse_cdi_spec(text: str, path: str = "") -> CdiSpec:
    """A CDI spec's text (JSON or YAML) → its kind and device names.

    >>> parse_cdi_spec('{"kind": "tuxai.dev/gpu", "devices": [{"name": "0"}, {"name": "1"}]}')
    CdiSpec(kind='tuxai.dev/gpu', devices=('0', '1'), path='')

    Raises:
        ValueError: not a CDI spec (no kind, or devices without names).
    """
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path or 'CDI spec'}: not JSON or YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or "/" not in data["kind"]:
        raise ValueError(f"{path or 'CDI spec'}: no kind such as nvidia.com/gpu")
    devices = data.get("devices") or []
    if not isinstance(devices, list) or not all(
        isinstance(d, dict) and isinstance(d.get("name"), str) for d in devices
    ):
        raise ValueError(f"{path or 'CDI spec'}: every device needs a name")
    return CdiSpec(data["kind"], tuple(d["name"] for d in devices), path)


def read_cdi_specs(dirs: Sequence[str] = CDI_DIRS) -> tuple[list[CdiSpec], list[str]]:
    """Every CDI spec (``*.json``, ``*.yaml``) in ``dirs``, and what is wrong with each one that cannot be
    read, by its path (one line each). The one reader of the spec files: the doctor's and the daemon's
    (``hardware.containers``) and a Slurm node's (``executor.slurm_container``), so a malformed spec is
    named wherever a GPU is then missing."""
    specs, problems = [], []
    for directory in dirs:
        try:
            paths = sorted(p for p in Path(directory).iterdir() if p.suffix in (".json", ".yaml", ".yml"))
        except OSError:
            continue
        for path in paths:
            try:
                specs.append(parse_cdi_spec(path.read_text(), str(path)))
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(" ".join(f"{path}: {exc}".split()))
            except ValueError as exc:
                problems.append(" ".join(str(exc).split()))
    return specs, problems


def cdi_names(allocation: Allocation, specs: Iterable[CdiSpec], problems: Sequence[str] = ()) -> tuple[str, ...]:
    """The CDI names of exactly the allocated GPUs: UUID (a MIG instance's) first, else the index.

    NVIDIA's kind is preferred where two specs name the same GPU; ``all`` is never used. ``problems``
    (``read_cdi_specs``'s) are the specs that could not be read: a missing GPU's error names them.

    >>> from tuxai.model.resources import GpuShare
    >>> spec = CdiSpec("tuxai.dev/gpu", ("0", "1", "all"))
    >>> cdi_names(Allocation("n", (GpuShare(1, "GPU-b"),)), [spec])
    ('tuxai.dev/gpu=1',)

    Raises:
        UsageError: a GPU no spec names (its hint: generate the spec).
    """
    ordered = sorted(specs, key=lambda s: s.kind != NVIDIA_KIND)
    names = []
    for share in allocation.gpus:
        wanted = [n for n in (share.mig_uuid, share.uuid if share.mig_uuid is None else None) if n]
        wanted += [] if share.mig_uuid else [str(share.index)]
        found = next((f"{s.kind}={w}" for w in wanted for s in ordered if w in s.devices), None)
        if found is None:
            unread = f"; unreadable: {'; '.join(problems)}" if problems else ""
            raise UsageError(
                f"no CDI device for GPU {share.mig_uuid or share.uuid or share.index} "
                f"(specs: {', '.join(s.path or s.kind for s in ordered) or 'none'}{unread})",
                hint=("fix or remove the unreadable spec, or " if problems else "")
                + "generate the CDI spec: nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
            )
        names.append(found)
    return tuple(names)


SUBID_REMEDY = "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user} && podman system migrate"
"""What a user whose own daemon runs container jobs (rootless podman) sets up once: ranges of its own."""


def has_subid_range(text: str, user: str, uid: int) -> bool:
    """Whether ``/etc/subuid`` (or subgid) text gives ``user`` (by name or uid) a range of at least 65536 ids:
    rootless podman unpacks an image's files (owned by root, shadow's group 42 …) into them.

    >>> has_subid_range("ana:100000:65536\n", "ana", 1000), has_subid_range("1000:1:10", "ana", 1000)
    (True, False)
    """
    for line in text.splitlines():
        name, _, rest = line.strip().partition(":")
        start, _, count = rest.partition(":")
        if name in (user, str(uid)) and start.isdigit() and count.isdigit() and int(count) >= 65536:
            return True
    return False


def choose_runtime(cgroup_version: int, hybrid: bool, available: Iterable[str]) -> str:
    """podman's OCI runtime for this host: crun refuses hybrid cgroup v1 hosts, runc does not.

    >>> choose_runtime(1, True, ["crun", "runc"]), choose_runtime(2, False, ["crun", "runc"])
    ('runc', 'crun')
    """
    have = list(available)
    order = ("runc", "crun") if (hybrid or cgroup_version == 1) else ("crun", "runc")
    return next((r for r in order if r in have), "")
