"""Scale-out bench (issue 15): tuxai up --ray against Ray's own APIs on one warm local Ray cluster.

    python bench/scale.py [--jobs 100] [--gangs 10]

The cluster is tests/ray/cluster.py's (a head on 127.0.0.2 with Ray's dashboard and job API, two
workers of 2 simulated GPUs, one CPU per node). Every job's command is ``date +%s.%N > FILE``: its
first act stamps the time, and submit → running is from before the submit call to that stamp (the
same mark on both sides; a state read back would count the poll). Jobs run one after the other, and
the first of each side warms it up, not counted.

1. One-GPU jobs: Ray's ``JobSubmissionClient.submit_job(entrypoint_num_gpus=1)`` against ``tuxai
   submit --gpus 1`` through the SDK to a ``tuxai up --ray`` daemon (its own process) on the same
   cluster. Ray starts a job supervisor actor (a fresh worker process) per job; tuxai runs each rank
   through its node's kept launcher, in a placement group kept from the job before on the same GPUs
   (``executor.ray_groups``). Issue 15 asks tuxai ≥ 10× faster (p50s).
2. A 2-node gang (one GPU on each worker, ``--launcher none``): submit → every rank's stamp, against
   the floor, a hand-written ``STRICT_SPREAD`` placement group and one fresh actor per bundle, each
   running the same command.
3. A 2-node gang with an environment (``tuxai submit --env requirements.txt``, the real CLI): the first
   submit of a lockfile builds it on each node (cold), the second reuses it (warm); the issue asks the
   warm one under 3 s to every rank's first act. Each round a lockfile of its own (a wheel made on the
   spot, offline: uv's own cache has it after the first round, as it would on a node that built before).
Needs ``ray[default]`` (the dashboard): ``make bench`` installs it. ``--jobs 0 --gangs 0``: only line 3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ray.cluster import LocalRayCluster  # noqa: E402

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
WORKERS = ("127.0.0.3", "127.0.0.4")


def _stamp(path: Path, began: float, timeout_s: float = 180.0) -> float:
    """Seconds from ``began`` (time.time()) to the stamp the job wrote in ``path``, once it did."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return float(text) - began
        if time.monotonic() > deadline:
            raise RuntimeError(f"no stamp in {path} after {timeout_s} s")
        time.sleep(0.002)


def _ray_jobs(url: str, stamps: Path, jobs: int) -> list[float]:
    """Each one-GPU job's submit → its first act through Ray's job API, in seconds."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(url)
    delays = []
    for number in range(jobs + 1):
        stamp = stamps / f"ray-{number}"
        began = time.time()
        job_id = client.submit_job(entrypoint=f"date +%s.%N > {stamp}", entrypoint_num_gpus=1)
        delay = _stamp(stamp, began)
        while str(client.get_job_status(job_id).value) not in TERMINAL:
            time.sleep(0.02)
        if number:  # the first one warms the job supervisor up
            delays.append(delay)
    return delays


def _tuxai_jobs(client: Any, stamps: Path, jobs: int, gang: bool) -> list[float]:
    """Each job's submit → its (every rank's) first act through a ``tuxai up --ray`` daemon, in seconds."""
    delays = []
    for number in range(jobs + 1):
        stamp = stamps / f"tuxai-{'gang' if gang else 'one'}-{number}"
        shape: dict[str, object] = {"nodes": 2, "gpus_per_node": 1, "launcher": "none"} if gang else {"gpus": 1}
        command = ["sh", "-c", f"date +%s.%N > {stamp}-$NODE_RANK" if gang else f"date +%s.%N > {stamp}"]
        began = time.time()
        job_id = client.submit({"command": command, **shape}, {"PATH": "/usr/bin:/bin"})
        ranks = [Path(f"{stamp}-{r}") for r in (0, 1)] if gang else [stamp]
        delay = max(_stamp(path, began) for path in ranks)
        while not client.job(job_id).state.terminal:
            time.sleep(0.01)
        if number:
            delays.append(delay)
    return delays


def _env_gangs(client: Any, home: Path, stamps: Path, rounds: int) -> dict[str, list[float]]:
    """Each round's cold and warm submit → every rank's first act of a 2-node gang with an env, in seconds;
    and the same from the CLI's return (the nodes' part: the daemon, the launchers, the env on each node)."""
    import os

    from tests.wheels import make_wheel

    wheel = make_wheel(stamps, "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    env = {**os.environ, "TUXAI_HOME": str(home)}
    delays: dict[str, list[float]] = {"cold": [], "warm": [], "cold-nodes": [], "warm-nodes": []}
    for number in range(rounds):
        lockfile = stamps / f"requirements-{number}.txt"
        lockfile.write_text(f"# round {number}\n{wheel}\n")  # its own text: its own environment
        for name in ("cold", "warm"):
            stamp = stamps / f"env-{number}-{name}"
            shape = ["--nodes", "2", "--gpus-per-node", "1", "--launcher", "none", "--env", str(lockfile)]
            command = ["sh", "-c", f"date +%s.%N > {stamp}-$NODE_RANK"]
            began = time.time()
            argv = [sys.executable, "-m", "tuxai", "submit", "--json", *shape, "--", *command]
            done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=300)
            returned = time.time()
            delays[name].append(max(_stamp(Path(f"{stamp}-{r}"), began) for r in (0, 1)))
            delays[f"{name}-nodes"].append(delays[name][-1] - (returned - began))
            job_id = json.loads(done.stdout)["id"]
            while not client.job(job_id).state.terminal:  # its GPUs free again: not the next submit's cost
                time.sleep(0.01)
    return delays


def _floor_gangs(address: str, stamps: Path, gangs: int) -> list[float]:
    """A hand-written gang: a STRICT_SPREAD group of one GPU on each worker and a fresh actor per bundle."""
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    import ray

    ray.init(address=address, _node_ip_address="127.0.0.2", log_to_driver=False, logging_level="WARNING")

    class Rank:
        def run(self, stamp: str) -> None:
            subprocess.run(["sh", "-c", f"date +%s.%N > {stamp}"], check=True)

    actor = ray.remote(num_cpus=0, num_gpus=1)(Rank)
    delays = []
    try:
        for number in range(gangs + 1):
            stamp = stamps / f"floor-{number}"
            began = time.time()
            group = placement_group([{"GPU": 1.0, f"node:{w}": 0.001} for w in WORKERS], strategy="STRICT_SPREAD")
            ray.get(group.ready(), timeout=60)
            ranks = [
                actor.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group, b)).remote() for b in (0, 1)
            ]
            ray.get([r.run.remote(f"{stamp}-{b}") for b, r in enumerate(ranks)], timeout=60)
            delay = max(_stamp(Path(f"{stamp}-{b}"), began) for b in (0, 1))
            for rank in ranks:
                ray.kill(rank)
            remove_placement_group(group)
            time.sleep(1.5)  # Ray gives a removed group's GPUs back about a second later: not the next gang's cost
            if number:
                delays.append(delay)
    finally:
        ray.shutdown()
    return delays


def _line(what: str, delays: list[float]) -> str:
    ordered = sorted(delays)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"{what}, {len(delays)} one after the other: submit→running p50 {statistics.median(delays) * 1000:.0f} ms, "
        f"p90 {p90 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


def main() -> int:
    """Start the cluster, time both sides, print the numbers, stop the cluster."""
    from tests.daemon_helpers import DaemonProcess, finish

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--gangs", type=int, default=10)
    parser.add_argument("--envs", type=int, default=3, help="rounds of a gang with an env: cold, then warm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tuxai-scale-") as tmp:
        stamps = Path(tmp) / "stamps"
        stamps.mkdir()
        cluster = LocalRayCluster(Path(tmp), dashboard=True)
        began = time.monotonic()
        try:
            cluster.start()
            print(f"Ray cluster up in {time.monotonic() - began:.1f} s (head + 2 workers, loopback addresses)")
            ray_jobs = _ray_jobs(cluster.dashboard_url, stamps, args.jobs) if args.jobs else []
            floor = _floor_gangs(cluster.address, stamps, args.gangs) if args.gangs else []
            daemon = DaemonProcess(Path(tmp) / "home", cluster.nodes[0].inventory, ("--ray", cluster.address))
            daemon.start(timeout_s=120)
            try:
                ours = _tuxai_jobs(daemon.client, stamps, args.jobs, gang=False) if args.jobs else []
                gangs = _tuxai_jobs(daemon.client, stamps, args.gangs, gang=True) if args.gangs else []
                envs = _env_gangs(daemon.client, daemon.home, stamps, args.envs) if args.envs else {}
            finally:
                finish(daemon)
        finally:
            cluster.stop()
        left = cluster.processes()
    if args.jobs:
        print(_line("Ray JobSubmissionClient.submit_job, one-GPU jobs", ray_jobs))
        print(_line("tuxai submit to tuxai up --ray, one-GPU jobs", ours))
        print(f"  ratio of p50s (Ray's / tuxai's): {statistics.median(ray_jobs) / statistics.median(ours):.1f}×")
    if args.gangs:
        print(_line("hand-written placement group + 2 actors, 2-node gangs (all ranks)", floor))
        print(_line("tuxai submit --nodes 2 --gpus-per-node 1, 2-node gangs (all ranks)", gangs))
        print(f"  ratio of p50s (tuxai's / the floor's): {statistics.median(gangs) / statistics.median(floor):.2f}")
    if args.envs:
        print(_line("tuxai submit --env LOCKFILE, 2-node gang, first submit (each node builds)", envs["cold"]))
        print(_line("  of which after the CLI returned", envs["cold-nodes"]))
        print(_line("tuxai submit --env LOCKFILE, 2-node gang, second submit (each node reuses)", envs["warm"]))
        print(_line("  of which after the CLI returned", envs["warm-nodes"]))
        cold, warm = statistics.median(envs["cold"]), statistics.median(envs["warm"])
        print(f"  ratio of p50s (cold / warm): {cold / warm:.1f}×")
    if left:
        print(f"processes of the cluster left running: {left}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
