"""`make run`: the daemon in the background, a PyTorch and a TensorFlow training job on a
simulated 2-GPU box (each in its own environment), and a third job that waits for a GPU.

Returns when the jobs are done and leaves the daemon up. Every step is the `tuxai` command
a person would type; the output is theirs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUXAI = str(Path(sys.executable).with_name("tuxai"))
INVENTORY = HERE / "inventories" / "two-gpu-box.yaml"
DONE = {"succeeded", "failed", "cancelled", "timeout", "preempted"}


def tuxai(*args: str, capture: bool = False) -> str:
    """Run a tuxai command, echoing it; stop the demo if it fails."""
    print(f"\n$ tuxai {' '.join(args)}", flush=True)
    done = subprocess.run([TUXAI, *args], cwd=HERE / "jobs", text=True, capture_output=capture, check=False)
    if done.returncode != 0:
        sys.exit(f"demo stopped: `tuxai {' '.join(args)}` exited with {done.returncode}\n{done.stderr or ''}")
    if capture:
        print(done.stdout, end="")
    return done.stdout or ""


def main() -> int:
    """Start, submit, watch, report."""
    running = subprocess.run([TUXAI, "ls"], capture_output=True, text=True, check=False).returncode == 0
    if running:
        print("a tuxai daemon is already up: submitting to it")
    else:
        tuxai("up", "--detach", "--inventory", str(INVENTORY))
    ids = [
        json.loads(tuxai(*args, capture=True))["id"]
        for args in (
            ("submit", "--json", "-n", "torch-train", "--gpus", "1", "--env", "requirements-torch.txt", "--",
             "python", "train_torch.py"),
            ("submit", "--json", "-n", "tf-train", "--gpus", "1", "--env", "requirements-tf.txt", "--",
             "python", "train_tf.py"),
            ("submit", "--json", "-n", "waits-for-a-gpu", "--gpus", "1", "--", "sh", "-c",
             "echo got GPU $CUDA_VISIBLE_DEVICES"),
        )
    ]  # fmt: skip
    time.sleep(1.0)
    tuxai("ls")
    while True:
        states = [json.loads(subprocess.run([TUXAI, "show", str(i), "--json"], capture_output=True,
                                            text=True, check=True).stdout)["state"] for i in ids]  # fmt: skip
        if all(s in DONE for s in states):
            break
        time.sleep(0.5)
    tuxai("ls", "--all")
    for job_id in ids:
        tuxai("logs", str(job_id))
    print("\nThe daemon is still up. Look at the queue: tuxai ls --all   Stop it: tuxai down")
    return 0 if all(s == "succeeded" for s in states) else 1


if __name__ == "__main__":
    sys.exit(main())
