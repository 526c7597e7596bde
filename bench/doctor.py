"""Doctor speed: `tuxai doctor` against the bare commands a user would run by hand.

Targets (issue 3): without framework probes under 1 s; with all probes under 20 s.
Baselines, run in this same process: a bare `python -c pass` (interpreter start)
for the fast path, and importing every installed framework one after another in
bare subprocesses for the full path. Prints absolute times and ratios.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time

FRAMEWORKS = ("torch", "tensorflow", "jax", "onnxruntime")
REPEAT = 5


def timed(argv: list[str]) -> float:
    """Wall time of one run of a command (its exit status 0 or 1 both count as done)."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed with {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def median(argv: list[str], repeat: int = REPEAT) -> float:
    """Median wall time over ``repeat`` runs."""
    return statistics.median(timed(argv) for _ in range(repeat))


def main() -> None:
    """Run both comparisons and print one line each."""
    python = sys.executable
    doctor = [python, "-m", "tuxai", "doctor", "--json"]
    bare = median([python, "-c", "pass"])
    fast = median([*doctor, "--no-frameworks"])
    print(
        f"doctor --no-frameworks: {fast:.3f} s  (bare python start {bare:.3f} s, ratio {fast / bare:.1f}x)"
        f"  target < 1 s: {'OK' if fast < 1 else 'MISSED'}"
    )
    present = [f for f in FRAMEWORKS if importlib.util.find_spec(f) is not None]
    imports = sum(median([python, "-c", f"import {f}"], repeat=3) for f in present)
    full = median(doctor, repeat=3)
    print(
        f"doctor with framework probes ({', '.join(present) or 'none installed'}): {full:.3f} s  "
        f"(sequential bare imports {imports:.3f} s, ratio {full / imports if imports else float('nan'):.2f}x)"
        f"  target < 20 s: {'OK' if full < 20 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
