"""`make run`: the daemon in the background, a PyTorch and a TensorFlow training job on a
simulated 2-GPU box (each in its own environment), and a third job that waits for a GPU.

Returns when the jobs are done and leaves the daemon up. Every step is the `tuxai` command
a person would type; the output is theirs.

The daemon has a home of its own (``build/demo-home``, or ``--home DIR``), never the one a plain
``tuxai submit`` reaches: a real server's next job does not land on the demo's fake GPUs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUXAI = str(Path(sys.executable).with_name("tuxai"))
DEMO_HOME = HERE.parent / "build" / "demo-home"
INVENTORY = HERE / "inventories" / "two-gpu-box.yaml"
DONE = {"succeeded", "failed", "cancelled", "timeout", "preempted"}


def tuxai(*args: str, capture: bool = False) -> str:
    """Run a tuxai command, echoing it as typed (with its --home); stop the demo if it fails."""
    print(f"\n$ tuxai {' '.join(args)}", flush=True)
    done = subprocess.run([TUXAI, *args], cwd=HERE / "jobs", text=True, capture_output=capture, check=False)
    if done.returncode != 0:
        sys.exit(f"demo stopped: `tuxai {' '.join(args)}` exited with {done.returncode}\n{done.stderr or ''}")
    if capture:
        print(done.stdout, end="")
        print(done.stderr, end="", file=sys.stderr)  # what tuxai says beside the answer (a simulated inventory)
    return done.stdout or ""


def start(home: Path) -> None:
    """The demo's daemon on the simulated 2-GPU box, in ``home``; one already up there is reused."""
    running = subprocess.run([TUXAI, "ls", "--home", str(home)], capture_output=True, check=False).returncode == 0
    if running:
        print(f"the demo's tuxai daemon is already up (home {home}): submitting to it")
    else:
        tuxai("up", "--detach", "--home", str(home), "--inventory", str(INVENTORY))


def main(argv: list[str] | None = None) -> int:
    """Start, submit, watch, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEMO_HOME, help="the demo daemon's home (default: %(default)s)")
    home = str(parser.parse_args(argv).home.resolve())
    start(Path(home))
    ids = [
        json.loads(tuxai(*args, capture=True))["id"]
        for args in (
            ("submit", "--home", home, "--json", "-n", "torch-train", "--gpus", "1", "--env",
             "requirements-torch.txt", "--", "python", "train_torch.py"),
            ("submit", "--home", home, "--json", "-n", "tf-train", "--gpus", "1", "--env", "requirements-tf.txt",
             "--", "python", "train_tf.py"),
            ("submit", "--home", home, "--json", "-n", "waits-for-a-gpu", "--gpus", "1", "--", "sh", "-c",
             "echo got GPU $CUDA_VISIBLE_DEVICES"),
        )
    ]  # fmt: skip
    time.sleep(1.0)
    tuxai("ls", "--home", home)
    while True:
        states = [json.loads(subprocess.run([TUXAI, "show", str(i), "--json", "--home", home], capture_output=True,
                                            text=True, check=True).stdout)["state"] for i in ids]  # fmt: skip
        if all(s in DONE for s in states):
            break
        time.sleep(0.5)
    tuxai("ls", "--all", "--home", home)
    for job_id in ids:
        tuxai("logs", str(job_id), "--home", home)
    print(f"\nThe demo's daemon is still up, on fake GPUs, in its own home {home}.")
    print(f"  Look at its queue: tuxai ls --all --home {home}")
    print(f"  Stop it:           tuxai down --home {home}")
    return 0 if all(s == "succeeded" for s in states) else 1


if __name__ == "__main__":
    sys.exit(main())
