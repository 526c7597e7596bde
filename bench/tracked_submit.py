"""A tracked ``tuxai submit`` (an MLflow run opened before the job) against an untracked one.

    python bench/tracked_submit.py [--runs 7] [--in-process]

Each number is the wall time of one ``python -m tuxai submit --json -- true`` process, as a user types
it, against one real daemon on a CPU-only box, with the user's own SQLite store (made once, first):

- untracked: ``TUXAI_MLFLOW=off``, the baseline;
- tracked, warm: the user's watcher alive, the run opened by its desk (``lifecycle.run_desk``);
- tracked, cold: the watcher stopped before each submit, so the submit starts it and waits for its
  desk — MLflow's import paid once, in the watcher;
- ``--in-process``: tracked with the run opened by MLflow in the submit itself (the path before the
  desk, and the one taken when the watcher cannot serve: here another ``MLFLOW_*`` variable).

Prints each median, the machine's load, the watcher's resident memory, and the ratio warm tracked /
untracked (1.0 would be free).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.daemon_helpers import DaemonProcess, finish  # noqa: E402

INVENTORY = REPO / "examples" / "inventories" / "laptop-cpu-only.yaml"


def submit(env: dict[str, str]) -> float:
    """Seconds one ``tuxai submit`` process took."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tuxai", "submit", "--json", "--", "true"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    took = time.perf_counter() - began
    if done.returncode != 0 or "tracking skipped" in done.stderr:
        raise SystemExit(f"submit failed: {done.stderr}")
    return took


def watcher_pid(data: Path) -> int | None:
    """The pid of the user's watcher, if one is alive."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((data / "tuxai/mlflow/open/watcher.lock").read_text())
        os.kill(pid, 0)
        return pid
    return None


def stop_watcher(data: Path) -> None:
    """Stop the user's watcher and wait until it is gone."""
    pid = watcher_pid(data)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.02)


def rss_mib(pid: int | None) -> float:
    """A process's resident memory in MiB."""
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = DaemonProcess(Path(tmp) / "home", INVENTORY).start()
        data = Path(tmp) / "data"
        env = {**os.environ, "TUXAI_HOME": str(daemon.home), "XDG_DATA_HOME": str(data)}
        env |= {"MLFLOW_DISABLE_TELEMETRY": "true"}
        for name in ("MLFLOW_TRACKING_URI", "TUXAI_MLFLOW", "MLFLOW_EXPERIMENT_NAME"):
            env.pop(name, None)
        try:
            print(f"store made by the first tracked submit: {submit(env):.2f} s")
            times: dict[str, list[float]] = {"untracked": [], "tracked, warm": [], "tracked, cold": []}
            for _ in range(args.runs):
                times["untracked"].append(submit({**env, "TUXAI_MLFLOW": "off"}))
                times["tracked, warm"].append(submit(env))
            memory = rss_mib(watcher_pid(data))
            for _ in range(args.runs):
                stop_watcher(data)
                times["tracked, cold"].append(submit(env))
            if args.in_process:  # another MLFLOW_* variable than the watcher's: the submit opens the run
                times["tracked, in the submit"] = [
                    submit({**env, "MLFLOW_HTTP_REQUEST_TIMEOUT": "121"}) for _ in range(args.runs)
                ]
        finally:
            stop_watcher(data)
            finish(daemon)
    load = os.getloadavg()
    print(f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.runs} runs each; watcher RSS {memory:.0f} MiB")
    for name, values in times.items():
        print(f"{name:24} median {statistics.median(values):.2f} s  (min {min(values):.2f}, max {max(values):.2f})")
    ratio = statistics.median(times["tracked, warm"]) / statistics.median(times["untracked"])
    print(f"ratio tracked (warm) / untracked: {ratio:.2f}")


if __name__ == "__main__":
    main()
