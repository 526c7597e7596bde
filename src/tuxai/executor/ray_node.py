"""One rank of a gang on its Ray node: the launcher actor's body (``executor.ray`` makes it a Ray actor).

The actor lives in the placement group's bundle on the node the scheduler chose, and runs tuxai's
own shim there exactly as the local executor does (the same ``Launch``, run directory, claim,
cgroups where the node allows, status file and exit status): a run directory under the node's
``root`` named after the actor, the shim started detached (its own session: it outlives the
actor, as a local shim outlives the daemon). Observing, stopping and reaping are the local
executor's, run on the node.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tuxai.executor.attempt import AttemptHandle, Observed, Seen
from tuxai.executor.local import LocalExecutor
from tuxai.executor.rundir import SHIM_LOG, Launch, write_launch
from tuxai.model.job import StopReason


class NodeRunner:
    """The rank named ``name`` on this node: its run directory is ``<root>/<name>/run-<attempt>``."""

    def __init__(self, root: str, name: str) -> None:
        """``root``: where this node keeps tuxai's run directories; ``name``: the actor's (unique per attempt)."""
        self.root, self.name = Path(root), name
        self.local = LocalExecutor(self.root)
        self.handle: AttemptHandle | None = None

    def start(self, launch: Launch) -> str:
        """Write the rank's launch and start its shim, detached; returns this node's address."""
        import ray

        base = self.root / self.name
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        run_dir = base / f"run-{launch.attempt}"
        if not run_dir.exists():
            write_launch(run_dir, launch)
            with open(run_dir / SHIM_LOG, "ab") as log:
                shim = [sys.executable, "-m", "tuxai.executor.shim", "--detach", str(run_dir)]
                subprocess.run(shim, stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=False)
        self.handle = AttemptHandle(str(run_dir))
        return str(ray.util.get_node_ip_address())

    def observe(self) -> Observed:
        """The rank's shim as the local executor sees it (NOT_STARTED before ``start``)."""
        if self.handle is None:
            return Observed(Seen.NOT_STARTED, None)
        return self.local.observe(self.handle)

    def stop(self, reason: StopReason) -> None:
        """Ask the rank's shim to stop: SIGTERM, the job's grace, SIGKILL."""
        if self.handle is not None:
            self.local.stop(self.handle, reason)

    def kill(self) -> None:
        """SIGKILL what is provably left of the rank's job (its process group, proven the job's)."""
        if self.handle is not None:
            self.local.kill_lost(self.handle)
