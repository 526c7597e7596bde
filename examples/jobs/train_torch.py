"""A small PyTorch training job: fit y = 3x - 1 with one linear layer, checkpointing as it goes.

Honours the checkpoint contract: on SIGTERM it saves and exits with $TUXAI_REQUEUE_EXIT_CODE,
and a requeued run resumes from $TUXAI_CHECKPOINT_DIR/model.pt.
"""

import importlib.util
import os
import signal
import sys

import torch

stop = False


def ask_to_stop(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, ask_to_stop)
print(f"torch {torch.__version__} in {sys.prefix}; tensorflow importable: {importlib.util.find_spec('tensorflow') is not None}")
print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r} cpus={sorted(os.sched_getaffinity(0))}")
torch.manual_seed(0)
checkpoint = os.path.join(os.environ.get("TUXAI_CHECKPOINT_DIR", "."), "model.pt")
model = torch.nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
start = 0
if os.path.exists(checkpoint):
    state = torch.load(checkpoint)
    model.load_state_dict(state["model"])
    start = state["step"]
    print(f"resumed at step {start}")
x = torch.linspace(-1, 1, 256).unsqueeze(1)
y = 3 * x - 1
for step in range(start, 300):
    loss = torch.nn.functional.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 100 == 0 or stop:
        torch.save({"model": model.state_dict(), "step": step + 1}, checkpoint)
    if stop:
        print(f"SIGTERM at step {step}: checkpoint saved, asking to be requeued")
        sys.exit(int(os.environ.get("TUXAI_REQUEUE_EXIT_CODE", "99")))
weight, bias = model.weight.item(), model.bias.item()
print(f"done: loss {loss.item():.5f}, w {weight:.3f}, b {bias:.3f}")
sys.exit(0 if abs(weight - 3) < 0.05 and abs(bias + 1) < 0.05 else 1)
