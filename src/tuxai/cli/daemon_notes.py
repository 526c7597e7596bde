"""What the CLI says about the daemon beside an answer: that its GPUs are simulated (every ``submit``
and ``ls``), that it could not listen for Prometheus and how to stop it (``up --detach``)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from tuxai.errors import TuxaiError

if TYPE_CHECKING:
    from tuxai.api.client import Client
    from tuxai.model.wire import Health

SIMULATED = "simulated:"
NO_METRICS = "no Prometheus endpoint on TCP: "  # the daemon's log line (api/server.py)


def simulated_note(health: Health) -> str | None:
    """``simulated inventory: x.yaml — jobs see fake GPUs`` for a daemon on a simulated inventory."""
    if not health.inventory.startswith(SIMULATED):
        return None
    return f"simulated inventory: {health.inventory.removeprefix(SIMULATED)} — jobs see fake GPUs"


def builds_on_nodes(api: Client) -> bool:
    """Whether the daemon ``api`` talks to runs jobs on a Ray cluster, whose nodes build ``--env``'s
    environment from the file's text (``Health.engine``); True also when it cannot say (the text is sent
    as before, the daemon drops it unless it runs on Ray)."""
    with contextlib.suppress(TuxaiError):
        return api.health().engine == "ray"
    return True


def simulated_note_of(api: Client) -> str | None:
    """``simulated_note`` of the daemon ``api`` talks to; None also when it cannot say (the answer
    already given stands: a note never turns it into an error)."""
    with contextlib.suppress(TuxaiError):
        return simulated_note(api.health())
    return None


def metrics_note(health: Health, log_since_start: str) -> str | None:
    """Why a daemon just started has no Prometheus endpoint, from its log (None: it has one)."""
    if health.metrics:
        return None
    for line in reversed(log_since_start.splitlines()):
        if NO_METRICS in line:
            return "prometheus: not on TCP: " + line.split(NO_METRICS, 1)[1]
    return "prometheus: not on TCP (set --metrics-addr HOST:PORT)"


def started_lines(health: Health, default_home: Path, log_path: Path, log_since_start: str) -> list[str]:
    """What ``tuxai up --detach`` prints once the daemon answers: where it is, what it could not do,
    how to look and how to stop it (with ``--home`` when it is not the one a bare command reaches)."""
    home = Path(health.home)
    flag = "" if home == default_home else f" --home {home}"
    notes = [metrics_note(health, log_since_start), simulated_note(health)]
    return [
        f"tuxai daemon up (pid {health.pid}), home {home}, log {log_path}",
        *(f"  {note}" for note in notes if note),
        f"  see the queue: tuxai ls{flag}    stop it: tuxai down{flag}",
    ]
