"""``python -m tuxai.lifecycle.job_watch [--fork] LEDGER``: end a submitted job's MLflow run when the job ends.

Started by ``lifecycle.job_tracking`` as the user who submitted, in a session of its own. It asks the
daemon for the job (every 0.5 s at first, every 5 s after a minute), and when the job has ended logs its
tags and metrics on the run, ends the run with the job's status and removes the ledger file. A daemon
that stops answering (a restart) is asked again for ``GIVE_UP_S``; then the watcher exits, and the next
tracked submit starts it again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

GIVE_UP_S = 600.0  # a daemon that answers nothing this long: exit (the ledger stays for the next submit)


def poll_s(waited_s: float) -> float:
    """How long to sleep between two questions after ``waited_s`` of waiting: 0.5 s, then 5 s after a minute.

    >>> poll_s(1.0), poll_s(120.0)
    (0.5, 5.0)
    """
    return 0.5 if waited_s < 60 else 5.0


def follow(ledger: Path) -> int:
    """Wait for the ledger's job to end, end its run, remove the ledger; 0, or 1 when it gave up."""
    from tuxai.api.client import Client
    from tuxai.errors import TuxaiError
    from tuxai.lifecycle.mlflow_runs import Tracker
    from tuxai.lifecycle.step_tracking import TRACKING_FAILURES

    entry = json.loads(ledger.read_text())
    ledger.write_text(json.dumps({**entry, "pid": os.getpid()}))
    job_id, run_id = int(entry["job"]), str(entry["run"])
    began = last_answer = time.monotonic()
    with Client.for_home(Path(entry["home"])) as client:
        while True:
            try:
                job = client.job(job_id)
            except TuxaiError as error:
                if time.monotonic() - last_answer > GIVE_UP_S:
                    print(f"job {job_id}: the daemon did not answer for {GIVE_UP_S:g} s: {error}", file=sys.stderr)
                    return 1
            else:
                last_answer = time.monotonic()
                if job.state.terminal:
                    break
            time.sleep(poll_s(time.monotonic() - began))
        try:
            models = {g.uuid: g.name for g in client.gpus() if g.uuid} if any(job.gpus) else {}
            Tracker(str(entry["experiment"])).close(run_id, job, models)
        except TRACKING_FAILURES as error:
            print(f"job {job_id}: its MLflow run {run_id} was not ended: {error}", file=sys.stderr)
            return 1
    ledger.unlink(missing_ok=True)
    return 0


def main(argv: list[str]) -> int:
    """``[--fork] LEDGER``: with ``--fork``, the first process exits at once and a child follows."""
    fork = argv[:1] == ["--fork"]
    ledger = Path(argv[-1])
    if fork and os.fork() != 0:
        os._exit(0)  # the parent of the follower: its caller waits for it, and for nothing more
    return follow(ledger)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
