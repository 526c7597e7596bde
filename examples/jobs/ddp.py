"""A small DistributedDataParallel job (gloo): one training step on every rank, then the checksum
of its all-reduced gradients, which is the same on every rank when the gang is wired right.

    tuxai submit --nodes 1 --gpus-per-node 2 --launcher torchrun -- python ddp.py
    tuxai submit --file ddp.yaml

Each rank prints its place (RANK, WORLD_SIZE, NODE_RANK, LOCAL_RANK), its GPUs
(CUDA_VISIBLE_DEVICES) and its process id. ``--fail-rank R`` makes rank R exit 1 once every
rank has started (the others wait, as a rank stuck in a collective would): the gang's teardown.
"""

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

parser = argparse.ArgumentParser()
parser.add_argument("--fail-rank", type=int, default=None, help="this rank exits 1 after the start barrier")
parser.add_argument("--steps", type=int, default=1)
options = parser.parse_args()

dist.init_process_group("gloo")  # MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE from torchrun
rank, world = dist.get_rank(), dist.get_world_size()
place = {name: os.environ.get(name, "") for name in ("RANK", "WORLD_SIZE", "NODE_RANK", "LOCAL_RANK")}


def say(line: str) -> None:
    """One line in one write: the node's ranks share its log, and print's text and newline are two
    writes when Python runs unbuffered (two ranks' lines then run together)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


say(
    f"rank {rank}/{world} "
    + " ".join(f"{k}={v}" for k, v in place.items())
    + f" CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')} pid={os.getpid()}"
)
dist.barrier()  # every rank has said where it is

if options.fail_rank is not None:
    if rank == options.fail_rank:
        say(f"rank {rank}: failing on purpose")
        time.sleep(0.5)
        sys.exit(1)
    time.sleep(600)  # the gang's teardown must end this

torch.manual_seed(0)  # the same initial weights on every rank
model = DistributedDataParallel(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
data = torch.Generator().manual_seed(1000 + rank)  # each rank its own batch: the all-reduce has work to do
for step in range(options.steps):
    inputs = torch.randn(32, 8, generator=data)
    targets = inputs.sum(dim=1, keepdim=True)
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(inputs), targets)
    loss.backward()  # DDP averages the gradients over every rank here
    checksum = sum(float(p.grad.double().abs().sum()) for p in model.parameters())
    say(f"rank {rank} step {step} loss {loss.item():.6f} grad checksum {checksum:.12f}")
    optimizer.step()

dist.destroy_process_group()
