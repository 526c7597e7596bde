"""GPUs a request cannot have for a reason of the machine, not of the queue: split into MIG
instances, or busy with processes tuxai did not start ("busy outside tuxai").

``mark_outside`` takes the busy GPUs out of what is free (they are never handed out, and never
come back when a job ends); ``mig_note`` and ``outside_note`` say so in a pending reason or a
rejection, with the flag that would fit::

    no whole GPU free: GPU 0 is in MIG mode (7 × 1g.10gb) — ask for --mig 1g.10gb
    GPU 3 is busy outside tuxai (pid 4242 of alice)

(The daemon's ``--allow-foreign-gpu-use`` hands such GPUs out all the same: it leaves the map empty.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from tuxai.model.gpu import Gpu
from tuxai.model.resources import Request
from tuxai.scheduler.capacity import NodeFree
from tuxai.scheduler.placement import type_matches


def mark_outside(state: Iterable[NodeFree], busy_outside: Mapping[str, Mapping[int | tuple[int, int], str]]) -> None:
    """Take every GPU busy outside tuxai (node → GPU index → who), and every MIG instance so busy
    (node → (GPU index, instance index) → who), out of what is free."""
    for node in state:
        for key, who in busy_outside.get(node.name, {}).items():
            index, instance = key if isinstance(key, tuple) else (key, None)
            if not 0 <= index < len(node.gpus):
                continue
            gpu = node.gpus[index]
            who = who or "a process tuxai did not start"
            if instance is not None:
                gpu.mig_outside[instance] = who
                gpu.mig_free.pop(instance, None)
                continue
            gpu.outside = who
            gpu.milli_free, gpu.memory_free, gpu.mig_free = 0, 0, {}
        node.touch()


def index_ranges(indices: Iterable[int]) -> str:
    """``[0, 1, 2, 3, 6]`` → ``"0-3, 6"``."""
    ordered = sorted(set(indices))
    parts: list[str] = []
    start = previous = None
    for index in [*ordered, None]:
        if start is not None and index == (previous or 0) + 1:
            previous = index
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = index
    return ", ".join(parts)


def _plural(indices: list[int], one: str, many: str) -> str:
    return f"GPU {index_ranges(indices)} {one}" if len(indices) == 1 else f"GPUs {index_ranges(indices)} {many}"


def mig_note(gpus: Iterable[Gpu], request: Request) -> str:
    """Why whole GPUs or slices are short because GPUs are in MIG mode, with the ``--mig`` to ask
    for instead (the profile with the most instances); ``""`` when no matching GPU is in MIG mode
    or the request asks for MIG."""
    if request.mig_profile is not None or not (request.gpus or request.shared):
        return ""
    split = [g for g in gpus if g.mig_enabled and type_matches(g.name, request.gpu_types)]
    if not split:
        return ""
    profiles = Counter(m.profile for g in split for m in g.mig_devices if m.profile)
    layout = ", ".join(f"{count} × {profile}" for profile, count in profiles.most_common())
    what = _plural([g.index for g in split], "is", "are") + " in MIG mode" + (f" ({layout})" if layout else "")
    ask = f" — ask for --mig {profiles.most_common(1)[0][0]}" if profiles else ""
    return f"{what}{ask}"


def outside_note(state: Iterable[NodeFree], request: Request) -> str:
    """Which GPUs (or MIG instances) the request could use are busy outside tuxai, and with what;
    ``""`` for none."""
    busy: list[tuple[int | tuple[int, int], str, str]] = []
    for gpu in (g for n in state for g in n.gpus):
        if gpu.outside:
            busy.append((gpu.index, gpu.name, gpu.outside))
        busy += [((gpu.index, i), gpu.name, who) for i, who in sorted(gpu.mig_outside.items())]
    return _outside_words(busy, request)


def pending_outside_note(
    busy_outside: Mapping[int | tuple[int, int], str], gpus: Iterable[Gpu], request: Request
) -> str:
    """``outside_note`` for a job no decision explained (one node: GPU index, or (GPU, MIG instance) → who)."""
    names = {g.index: g.name for g in gpus}
    busy = []
    for key, who in busy_outside.items():
        index = key[0] if isinstance(key, tuple) else key
        if index in names:
            busy.append((key, names[index], who))
    return _outside_words(busy, request)


def _outside_words(busy: list[tuple[int | tuple[int, int], str, str]], request: Request) -> str:
    if not (request.gpus or request.shared or request.mig_profile):
        return ""
    # A busy MIG instance matters to a MIG request only; a whole GPU to every request.
    usable = [
        (key, who)
        for key, name, who in busy
        if type_matches(name, request.gpu_types) and (request.mig_profile is not None or not isinstance(key, tuple))
    ]
    if not usable:
        return ""
    named = [(f"GPU {k[0]} MIG {k[1]}" if isinstance(k, tuple) else f"GPU {k}", who) for k, who in usable]
    if len(named) == 1:
        return f"{named[0][0]} is busy outside tuxai ({named[0][1]})"
    shown = ", ".join(f"{what.removeprefix('GPU ')} ({who})" for what, who in named[:3])
    return f"GPUs busy outside tuxai: {shown}" + (f" and {len(named) - 3} more" if len(named) > 3 else "")
