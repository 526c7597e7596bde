"""Results of several seeds folded into one row per policy: the mean, and the spread."""

from __future__ import annotations

import statistics
from typing import Any

from tuxai.errors import UsageError
from tuxai.sim.packing import PackingResult
from tuxai.sim.timemode import TimeResult

PACKING_FIELDS = ("allocated_gpu_share", "unallocated_gpus", "failed")
TIME_FIELDS = ("avg_jct_s", "p95_jct_s", "avg_wait_s", "p95_wait_s", "makespan_s", "rejected")


def parse_seeds(seed: int | None, seeds: str | None) -> list[int]:
    """``--seed 42`` → ``[42]``; ``--seeds 42-51`` or ``42,43`` → the list.

    Raises:
        UsageError: both given, or a malformed range.
    """
    if seed is not None and seeds is not None:
        raise UsageError("--seed and --seeds cannot be used together", hint="pick one")
    if seeds is None:
        return [42 if seed is None else seed]
    try:
        if "-" in seeds:
            low, _, high = seeds.partition("-")
            values = list(range(int(low), int(high) + 1))
        else:
            values = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds must look like 42-51 or 42,43, got {seeds!r}", hint="e.g. --seeds 42-51") from None
    if not values:
        raise UsageError(f"--seeds {seeds!r} names no seed", hint="e.g. --seeds 42-51")
    return values


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def packing_row(results: list[PackingResult]) -> dict[str, Any]:
    """One JSON object for a packing policy over its seeds."""
    first = results[0]
    curve = [statistics.fmean(r.curve[i] for r in results) for i in range(len(first.curve))]
    row: dict[str, Any] = {
        "policy": first.policy,
        "mode": "packing",
        "jobs": round(statistics.fmean(r.jobs for r in results)),
        "seeds": [r.seed for r in results],
        "curve": [round(v, 6) for v in curve],
        "unallocated_gpus_curve": [
            round(statistics.fmean(r.unallocated_gpus_curve[i] for r in results), 3) for i in range(len(curve))
        ],
        "allocated_gpu_share_at_130": round(curve[130], 6),
    }
    for name in PACKING_FIELDS:
        values = [float(getattr(r, name)) for r in results]
        row[name] = statistics.fmean(values)
        row.setdefault("spread", {})[name] = _spread(values)
    return row


def time_row(results: list[TimeResult]) -> dict[str, Any]:
    """One JSON object for a time-mode policy over its seeds."""
    first = results[0]
    row: dict[str, Any] = {
        "policy": first.policy,
        "mode": "time",
        "jobs": first.jobs,
        "seeds": [r.seed for r in results],
    }
    for name in TIME_FIELDS:
        values = [float(getattr(r, name)) for r in results]
        row[name] = statistics.fmean(values)
        row.setdefault("spread", {})[name] = _spread(values)
    for name in ("p95_wait_by_gpus_s", "avg_jct_by_gpus_s"):
        sizes = sorted({k for r in results for k in getattr(r, name)})
        row[name] = {k: statistics.fmean(getattr(r, name)[k] for r in results if k in getattr(r, name)) for k in sizes}
    row["allocation"] = [list(point) for point in first.allocation]
    return row
