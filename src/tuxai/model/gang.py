"""A multi-node job's shape: how many nodes, and which launcher starts its processes on each.

``--nodes N --gpus-per-node G --launcher torchrun|none`` (or ``nodes:``, ``gpus_per_node:``,
``launcher:`` in a job file). ``torchrun`` runs the user's ``python train.py …`` as
``torchrun … train.py …`` on every node; ``none`` runs the command as given, with the
variables a launcher needs (MASTER_ADDR, NODE_RANK …: ``model.launch``).

Pure: ``torchrun_target(command)`` says what torchrun is given, or why it cannot be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from tuxai.errors import UsageError

MAX_NODES = 4096
GPU_RESOURCE_PREFIX = "tuxai_gpu_"  # a GPU as a Ray custom resource: tuxai_gpu_<uuid> (cluster.ray_nodes, executor.ray)
RAY_NAMESPACE = "tuxai"  # the daemon joins Ray in it: its named placement groups and actors outlive it


class Launcher(StrEnum):
    """Who starts a gang's processes on each node."""

    NONE = "none"  # the command itself, once per node, with the variables
    TORCHRUN = "torchrun"  # torchrun --nnodes … --node-rank R, one process per GPU

    @classmethod
    def parse(cls, text: str, where: str = "--launcher") -> Launcher:
        """``"torchrun"`` → ``Launcher.TORCHRUN``.

        Raises:
            UsageError: another name (the message lists the known ones).
        """
        try:
            return cls(text.strip().lower())
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise UsageError(f"{where} must be one of {known}, got {text!r}", hint="--launcher torchrun") from None


_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")


@dataclass(frozen=True)
class TorchrunTarget:
    """What torchrun is handed: its own program (``torchrun`` or ``DIR/torchrun``) and the words after its options."""

    program: str
    args: tuple[str, ...]  # "train.py", "--lr", "3" or "-m", "pkg.train", …


def torchrun_target(command: tuple[str, ...]) -> TorchrunTarget:
    """A job's command as torchrun takes it.

    >>> torchrun_target(("python", "train.py", "--lr", "3"))
    TorchrunTarget(program='torchrun', args=('train.py', '--lr', '3'))
    >>> torchrun_target(("/venv/bin/python3", "-m", "pkg.train"))
    TorchrunTarget(program='/venv/bin/torchrun', args=('-m', 'pkg.train'))
    >>> torchrun_target(("train.py",)).args
    ('train.py',)

    Raises:
        UsageError: a command torchrun cannot run (not ``python SCRIPT``, ``python -m MODULE``
            or ``SCRIPT.py``), in one line with the forms it takes.
    """
    forms = "`python SCRIPT.py …`, `python -m MODULE …` or `SCRIPT.py …`"
    shown = " ".join(command[:3]) + (" …" if len(command) > 3 else "")
    hint = "--launcher none runs the command as given, with MASTER_ADDR, NODE_RANK … set"
    if not command:
        raise UsageError(f"--launcher torchrun needs a command: {forms}", hint=hint)
    head, rest = command[0], command[1:]
    directory, _, base = head.rpartition("/")
    if _PYTHON.match(base):
        program = f"{directory}/torchrun" if directory else "torchrun"
        if rest[:1] == ("-m",) and len(rest) >= 2:
            return TorchrunTarget(program, rest)
        if rest and not rest[0].startswith("-"):
            return TorchrunTarget(program, rest)
        why = "an interpreter option" if rest else "no script"
        raise UsageError(f"--launcher torchrun cannot run {shown!r} ({why}): it takes {forms}", hint=hint)
    if base == "torchrun" or head.endswith("torch.distributed.run"):
        raise UsageError(
            f"--launcher torchrun: {shown!r} is torchrun already", hint="give the script: -- python train.py …"
        )
    if base.endswith(".py"):
        return TorchrunTarget("torchrun", command)
    raise UsageError(f"--launcher torchrun cannot run {shown!r}: it takes {forms}", hint=hint)
