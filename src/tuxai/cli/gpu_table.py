"""GPUs as people read them: who holds each GPU, each MIG instance and each shared slice, and what
runs on a GPU outside tuxai — the ``tuxai gpus`` table, ``tuxai top``'s holder cell, and a job's
placement in ``tuxai ls`` (``GPU 0 · MIG 3g.40gb``, ``GPU 2 · 25% slice``, not ``0,0,0``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.table import Table

from tuxai.cli.jobs import cell, printable
from tuxai.model.resources import WHOLE_GPU_MILLI
from tuxai.model.units import format_bytes
from tuxai.model.wire import Job, PublicJob
from tuxai.model.wire_gpus import GpuHolder, GpuView, MigInstance


def holder_words(holder: GpuHolder, compact: bool = False) -> str:
    """``alice job 12 train`` (the name where the caller may see it; ``compact``: ``12 alice train``),
    with ``(25% slice, 20.0 GiB)`` for a slice (``(10.0 GiB slice)`` for one of memory only)."""
    who = f"{holder.job} {holder.user}" if compact else f"{holder.user} job {holder.job}"
    words = who + (f" {printable(holder.name)}" if holder.name else "")
    if holder.mig is not None or (holder.share >= 1 and not holder.memory_bytes):
        return words
    if holder.share >= 1:  # a slice of memory only (--gpu-mem)
        return words + f" ({format_bytes(holder.memory_bytes)} slice)"
    cap = f", {format_bytes(holder.memory_bytes)}" if holder.memory_bytes and not compact else ""
    return words + f" ({holder.share:.0%} slice{cap})"


def outside_words(gpu: GpuView, compact: bool = False, mig: int | None = None) -> str:
    """``busy outside tuxai: pid 4242 of alice (2.0 GiB)`` (``compact``: without the memory) for
    the processes on the whole GPU (``mig``: on that MIG instance), or ``""`` when none."""
    each = [
        f"pid {p.pid}"
        + (f" of {p.user}" if p.user else "")
        + (f" ({format_bytes(p.memory_bytes)})" if p.memory_bytes and not compact else "")
        for p in gpu.outside
        if p.mig_index == mig
    ]
    return "busy outside tuxai: " + ", ".join(each) if each else ""


def mig_summary(gpu: GpuView, compact: bool = False) -> str:
    """``MIG 7 × 1g.10gb, 4 free`` (``compact``: ``MIG 4/7 free``) for a GPU split into instances;
    ``""`` for a whole one."""
    if not gpu.mig_instances:
        return ""
    held = {h.mig for h in gpu.holders if h.mig}
    busy = {p.mig_index for p in gpu.outside}  # None: the whole GPU, no instance to hand out
    free = 0 if None in busy else sum(1 for m in gpu.mig_instances if m.uuid not in held and m.index not in busy)
    if compact:
        return f"MIG {free}/{len(gpu.mig_instances)} free"
    profiles = Counter(m.profile or "?" for m in gpu.mig_instances)
    layout = " + ".join(f"{count} × {profile}" for profile, count in profiles.items())
    return f"MIG {layout}, {free} free"


def gpu_state(gpu: GpuView, compact: bool = False) -> str:
    """Who holds the GPU, in one cell: its holders, its MIG instances' summary, what runs outside tuxai, or ``free``."""
    parts = []
    if gpu.mig_instances:
        users = Counter(holder_words(h, compact) for h in gpu.holders)
        held = [words + (f" ×{count}" if count > 1 else "") for words, count in users.items()]
        parts.append(mig_summary(gpu, compact) + (": " + ", ".join(held) if held else ""))
    else:
        parts += [holder_words(h, compact) for h in gpu.holders]
        shared = sum(h.share for h in gpu.holders)
        if gpu.holders and shared < 1:
            parts.append(f"{1 - shared:.0%} free")
    parts.append(outside_words(gpu, compact))
    return ", ".join(p for p in parts if p) or "free"


def instance_holder(gpu: GpuView, instance: MigInstance, compact: bool = False) -> str:
    """Who holds one MIG instance (a job, a process outside tuxai), or ``free``."""
    holder = next((h for h in gpu.holders if h.mig is not None and h.mig == instance.uuid), None)
    words = [holder_words(holder, compact) if holder else "", outside_words(gpu, compact, instance.index)]
    return ", ".join(w for w in words if w) or "free"


def gpus_table(gpus: Sequence[GpuView]) -> Table:
    """``tuxai gpus``: one row per GPU, one beneath it per MIG instance (``0/3``)."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("GPU", "MODEL", "MEMORY", "UUID", "HELD BY"):
        table.add_column(column, no_wrap=True)
    for gpu in gpus:
        memory = format_bytes(gpu.memory_total_bytes) if gpu.memory_total_bytes is not None else "-"
        table.add_row(cell(gpu.index), cell(gpu.name), cell(memory), cell(gpu.uuid or "-"), cell(gpu_state(gpu)))
        for instance in gpu.mig_instances:
            size = format_bytes(instance.memory_total_bytes) if instance.memory_total_bytes is not None else "-"
            table.add_row(
                cell(f"{gpu.index}/{instance.index}"),
                cell(f"  MIG {instance.profile or '?'}"),
                cell(size),
                cell(instance.uuid or "-"),
                cell(instance_holder(gpu, instance)),
            )
    return table


def placement_words(job: PublicJob, gpus: Sequence[GpuView]) -> str:
    """Where a job runs, in words: whole GPUs as ``0,1``; ``GPU 0 · 3×MIG 1g.10gb``; ``GPU 2 · 25% slice``.

    The MIG profile comes from the GPU's instances (``gpus``), a slice's share from the GPU's
    holders while the job runs, else from the job's own request (the owner's view).
    """
    if not job.gpu_indices:
        return "-"
    by_index = {g.index: g for g in gpus}
    request = job.spec.request if isinstance(job, Job) else None
    whole: list[int] = []
    mig: Counter[tuple[int, str]] = Counter()
    sliced: dict[int, str] = {}
    for index, uuid in zip(job.gpu_indices, job.gpus, strict=False):
        gpu = by_index.get(index)
        instance = next((m for m in gpu.mig_instances if m.uuid == uuid), None) if gpu and uuid else None
        if instance is not None or (uuid or "").startswith("MIG-"):
            profile = instance.profile if instance else (request.mig_profile if request else None)
            mig[(index, profile or "?")] += 1
            continue
        holder = next((h for h in gpu.holders if h.job == job.id), None) if gpu else None
        share = holder.share if holder else (request.gpu_milli / WHOLE_GPU_MILLI if request and request.shared else 1.0)
        memory = holder.memory_bytes if holder else (request.gpu_mem_bytes if request and request.shared else None)
        if share < 1:
            sliced[index] = f"{share:.0%}"
        elif memory:  # a slice of memory only (--gpu-mem)
            sliced[index] = format_bytes(memory)
        else:
            whole.append(index)
    parts = [",".join(str(i) for i in whole)] if whole else []
    for (index, profile), count in mig.items():
        parts.append(f"GPU {index} · " + (f"{count}×" if count > 1 else "") + f"MIG {profile}")
    parts += [f"GPU {index} · {size} slice" for index, size in sliced.items()]
    return "; ".join(parts)
