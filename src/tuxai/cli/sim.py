"""``tuxai sim``: replay a cluster trace through the scheduler and compare policies."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tuxai.errors import UsageError
from tuxai.sim.openb import TIME_COLUMNS, parse_nodes, parse_pods
from tuxai.sim.packing import PACKING_POLICIES, replay_packing
from tuxai.sim.report import packing_row, parse_seeds, time_row
from tuxai.sim.timemode import TIME_POLICIES, PolicyConfig, draw_workload, policy_config, replay_time

T = TypeVar("T")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise UsageError(
            f"cannot read the {what} {path}: {exc.strerror}", hint=f"check the path given for the {what}"
        ) from None


def read_runtimes(text: str, origin: str) -> list[float]:
    """The ``runtime`` column (seconds) of a runtime CSV.

    Raises:
        UsageError: no ``runtime`` column or a value that is not a number.
    """
    reader = csv.DictReader(io.StringIO(text))
    if "runtime" not in (reader.fieldnames or ()):
        raise UsageError(f"{origin} has no 'runtime' column", hint="pass philly_runtime.csv")
    values = []
    for line, row in enumerate(reader, start=2):
        try:
            values.append(max(0.0, float(row["runtime"])))
        except ValueError:
            raise UsageError(
                f"{origin} line {line}: runtime {row['runtime']!r} is not a number", hint="fix the CSV"
            ) from None
    return values


class _LateProgress:
    """A progress bar that appears only once a replay has run for a second."""

    def __init__(self, console: Console, label: str) -> None:
        self.console, self.label = console, label
        self.started = time.monotonic()
        self.progress: Progress | None = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            if time.monotonic() - self.started < 1.0:
                return
            self.progress = Progress(console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _shown(console: Console, policy: str, seed: int, replay: Callable[[Callable[[int, int], None]], T]) -> T:
    """Run one replay with a progress bar that shows up only if it takes over a second."""
    bar = _LateProgress(console, f"{policy} seed {seed}")
    try:
        return replay(bar)
    finally:
        bar.close()


def _replay_time(
    cluster: Any, jobs: Any, policy: str, seed: int, config: PolicyConfig | None, bar: Callable[[int, int], None]
) -> Any:
    return replay_time(cluster, jobs, policy, seed, bar, config)


def run_sim(
    *,
    format_name: str,
    jobs: Path,
    cluster: Path,
    mode: str,
    policies: str,
    seed: int | None,
    seeds: str | None,
    runtimes: Path | None,
    count: int,
    nodes: int,
    load: float,
    as_json: bool,
    plot: Path | None,
    scheduler_config: Path | None = None,
) -> int:
    """Run the replay for every policy and seed, print the comparison; returns the exit status.

    Raises:
        UsageError: bad options or unreadable inputs.
    """
    if format_name != "openb":
        raise UsageError(f"unknown trace format {format_name!r}", hint="the formats known: openb")
    known = PACKING_POLICIES if mode == "packing" else tuple(TIME_POLICIES)
    if mode not in ("packing", "time"):
        raise UsageError(f"--mode must be time or packing, got {mode!r}", hint="e.g. --mode packing")
    chosen = [p.strip() for p in policies.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in known]
    if unknown or not chosen:
        raise UsageError(
            f"policy {', '.join(unknown) or '(none)'} is not a {mode}-mode policy",
            hint=f"{mode} mode runs {', '.join(known)}",
        )
    seed_list = parse_seeds(seed, seeds)
    node_list = parse_nodes(_read(cluster, "node list"), str(cluster))
    stderr = Console(stderr=True)
    rows: list[dict[str, Any]] = []
    if mode == "packing":
        pods = parse_pods(_read(jobs, "pod list"), str(jobs))
        for policy in chosen:
            rows.append(
                packing_row(
                    [
                        _shown(stderr, policy, one, partial(replay_packing, node_list, pods, policy, one))
                        for one in seed_list
                    ]
                )
            )
    else:
        pods = parse_pods(_read(jobs, "pod list"), str(jobs), require=TIME_COLUMNS)
        if runtimes is None:
            raise UsageError("time mode needs --runtimes FILE", hint="e.g. --runtimes philly_runtime.csv")
        runtime_list = read_runtimes(_read(runtimes, "runtime list"), str(runtimes))
        custom = None
        if scheduler_config is not None:
            custom = policy_config(_read(scheduler_config, "scheduler config"), str(scheduler_config))
        workloads = {one: draw_workload(node_list, pods, runtime_list, count, nodes, load, one) for one in seed_list}
        for policy in chosen:
            rows.append(
                time_row(
                    [
                        _shown(
                            stderr,
                            policy,
                            one,
                            partial(_replay_time, *workload, policy, one, custom if policy == "tuxai" else None),
                        )
                        for one, workload in workloads.items()
                    ]
                )
            )
    if plot is not None:
        _plot(rows, mode, plot)
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        _render(rows, mode, Console())
    return 0


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _render(rows: list[dict[str, Any]], mode: str, console: Console) -> None:
    seeds = rows[0]["seeds"]
    title = f"{mode} mode, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    table = Table(title=title, title_justify="left")
    if mode == "packing":
        for column in ("policy", "pods", "allocated @100 %", "@130 %", "unallocated GPUs", "failed pods"):
            table.add_column(column, justify="right" if column != "policy" else "left")
        for row in rows:
            spread = row["spread"]["allocated_gpu_share"]["std"] * 100
            table.add_row(
                row["policy"],
                str(row["jobs"]),
                f"{row['allocated_gpu_share'] * 100:.2f} %" + (f" ± {spread:.2f}" if len(seeds) > 1 else ""),
                f"{row['allocated_gpu_share_at_130'] * 100:.2f} %",
                f"{row['unallocated_gpus']:.0f}",
                f"{row['failed']:.0f}",
            )
    else:
        fields: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
            ("policy", lambda r: str(r["policy"])),
            ("avg JCT", lambda r: _hours(r["avg_jct_s"])),
            ("p95 JCT", lambda r: _hours(r["p95_jct_s"])),
            ("avg wait", lambda r: _hours(r["avg_wait_s"])),
            ("p95 wait", lambda r: _hours(r["p95_wait_s"])),
            ("p95 wait 4 GPUs", lambda r: _hours(r["p95_wait_by_gpus_s"].get("4", 0.0))),
            ("p95 wait 8 GPUs", lambda r: _hours(r["p95_wait_by_gpus_s"].get("8", 0.0))),
            ("makespan", lambda r: _hours(r["makespan_s"])),
        ]
        for name, _ in fields:
            table.add_column(name, justify="left" if name == "policy" else "right")
        for row in rows:
            table.add_row(*(render(row) for _, render in fields))
    console.print(table)


def _plot(rows: list[dict[str, Any]], mode: str, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib", hint="pip install matplotlib") from None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        if mode == "packing":
            axes.plot(range(len(row["curve"])), [v * 100 for v in row["curve"]], label=row["policy"])
        else:
            points = row["allocation"]
            axes.plot([p[0] / 3600 for p in points], [p[1] * 100 for p in points], label=row["policy"])
    if mode == "packing":
        axes.set_xlabel("arrived GPU demand (% of capacity)")
        axes.set_ylabel("GPU capacity allocated (%)")
    else:
        axes.set_xlabel("time (h)")
        axes.set_ylabel("GPUs allocated (%)")
    axes.grid(True, alpha=0.3)
    axes.legend()
    try:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise UsageError(f"cannot write the plot {path}: {exc.strerror}", hint="pick a writable path") from None
    finally:
        plt.close(figure)
