"""``tuxai drift NAME --url URL``: a served model's drift, per feature, from the server's ``/metrics``
(docs/serving.md, Drift); with ``--watch S`` read again every S seconds, and ``--on-drift CMD`` run once
per drift episode (from the first window that drifted to the next one that did not).

Reading and deciding are pure (``read_drift``, ``Episodes``); the command asks and prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from tuxai.cli.common import DebugOption, guard

_SAMPLE = re.compile(r"^(tuxai_serve_drift(?:_psi|_js|_windows_total)?)\{(.*)\} (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
DRIFT_PSI = 0.25  # serving.drift's threshold, as the gauges are read against it (not imported: no numpy here)


@dataclass
class VersionDrift:
    """One served version's last closed window: whether it drifted, each feature's PSI and JS distance."""

    version: str
    drifted: bool = False
    windows: int = 0
    psi: dict[str, float] = field(default_factory=dict)
    js: dict[str, float] = field(default_factory=dict)

    def features(self) -> list[str]:
        """The drifted features, highest PSI first."""
        return sorted((f for f, v in self.psi.items() if v >= DRIFT_PSI), key=lambda f: -self.psi[f])


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def read_drift(text: str, model: str) -> dict[str, VersionDrift]:
    """The drift gauges of ``model`` in a ``/metrics`` body, by version.

    >>> read_drift('tuxai_serve_drift{model="m",version="2"} 1', "m")["2"].drifted
    True
    """
    found: dict[str, VersionDrift] = {}
    for family, labelled, value in _SAMPLE.findall(text):
        labels = {k: _unescape(v) for k, v in _LABEL.findall(labelled)}
        if labels.get("model") != model:
            continue
        entry = found.setdefault(labels.get("version", ""), VersionDrift(labels.get("version", "")))
        number = float(value)
        if family == "tuxai_serve_drift":
            entry.drifted = number >= 1
        elif family == "tuxai_serve_drift_windows_total":
            entry.windows = int(number)
        else:
            table = entry.psi if family.endswith("_psi") else entry.js
            table[labels.get("feature", "")] = number
    return found


class Episodes:
    """Which newly closed windows start a drift episode: ``--on-drift`` runs once per episode."""

    def __init__(self) -> None:
        self._windows: dict[str, int] = {}
        self._drifting: set[str] = set()

    def starts(self, readings: dict[str, VersionDrift]) -> list[VersionDrift]:
        """The versions whose latest window drifted after one that did not (or after none seen)."""
        started = []
        for version, reading in sorted(readings.items()):
            if self._windows.get(version) == reading.windows:
                continue  # no new window closed: nothing new to judge
            self._windows[version] = reading.windows
            if reading.drifted and version not in self._drifting:
                self._drifting.add(version)
                started.append(reading)
            elif not reading.drifted:
                self._drifting.discard(version)
        return started


def render(model: str, readings: dict[str, VersionDrift]) -> str:
    """Each version's verdict, then its features (drifted first) with PSI, JS distance and state."""
    if not readings:
        return f"model {model}: no drift window closed yet (or no drift-reference.json: docs/serving.md)"
    lines = []
    for version, reading in sorted(readings.items()):
        drifted = reading.features()
        verdict = "drift on " + ", ".join(drifted) if drifted else "no drift"
        lines.append(f"model {model} version {version}: {verdict} (last of {reading.windows} windows)")
        lines.append(f"  {'FEATURE':<24} {'PSI':>7} {'JS':>7}  STATE")
        order = drifted + sorted(f for f in reading.psi if f not in drifted)
        for feature in order:
            psi = reading.psi[feature]
            state = "drift" if psi >= DRIFT_PSI else "watch" if psi >= 0.1 else "ok"
            lines.append(f"  {feature[:24]:<24} {psi:>7.3f} {reading.js.get(feature, 0.0):>7.3f}  {state}")
    return "\n".join(lines)


def _metrics(url: str, token_file: Path | None) -> str:
    import httpx

    from tuxai.errors import UsageError
    from tuxai.serving.tokens import read_token_file

    headers = {"Authorization": f"Bearer {read_token_file(token_file.expanduser())}"} if token_file else {}
    try:
        answer = httpx.get(url.rstrip("/") + "/metrics", headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach {url}: {exc}", "is `tuxai serve` running there?") from None
    if answer.status_code != 200:
        hint = "pass --token-file FILE (the server's)" if answer.status_code == 401 else "see the server's log"
        raise UsageError(f"{url}/metrics answered {answer.status_code}", hint)
    return answer.text


def _run_on_drift(command: str, model: str, started: list[VersionDrift]) -> None:
    """Run the user's ``--on-drift`` command once for each version whose drift episode began, told which."""
    for reading in started:
        env = {**os.environ, "TUXAI_DRIFT_MODEL": model, "TUXAI_DRIFT_VERSION": reading.version,
               "TUXAI_DRIFT_FEATURES": ",".join(reading.features())}  # fmt: skip
        print(f"drift episode of version {reading.version}: running {command}", file=sys.stderr, flush=True)
        subprocess.run(command, shell=True, env=env, check=False)


def drift(
    model: Annotated[str, typer.Argument(help="The served model's name.", metavar="NAME")],
    url: Annotated[str, typer.Option("--url", help="The server (tuxai serve's endpoint).")] = "http://127.0.0.1:8000",
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="The server's bearer token file.", metavar="FILE")
    ] = None,
    watch: Annotated[float, typer.Option("--watch", help="Read again every S seconds (0: once).", metavar="S")] = 0.0,
    on_drift: Annotated[
        str | None, typer.Option("--on-drift", help="Shell command run once per drift episode.", metavar="CMD")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """A served model's drift per feature (PSI, Jensen-Shannon) from the server's /metrics."""

    def action() -> int:
        episodes = Episodes()
        while True:
            readings = read_drift(_metrics(url, token_file), model)
            print(render(model, readings), flush=True)
            if on_drift:
                _run_on_drift(on_drift, model, episodes.starts(readings))
            if watch <= 0:
                return 0
            time.sleep(watch)

    raise typer.Exit(guard(action, debug))
