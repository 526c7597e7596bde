"""The server's drift windows: one per model version that carries a reference, fed by every answered
request, its last verdict exported on ``/metrics``.

A version carries its training data's statistics as ``drift-reference.json`` in its directory
(``serving.drift.Reference.to_json``; beside a single model file: ``<stem>.drift-reference.json``).
A version without one has no window and costs nothing. The gauges, per model, version and feature
(bounded: the features are the reference's)::

    tuxai_serve_drift{model="digits",version="2"} 1
    tuxai_serve_drift_psi{model="digits",version="2",feature="x[36]"} 0.41
    tuxai_serve_drift_js{model="digits",version="2",feature="x[36]"} 0.22
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuxai.errors import UsageError
from tuxai.model.exposition import Exposition, labels
from tuxai.serving.drift import Reference, Verdict, Window, columns_of

if TYPE_CHECKING:
    from tuxai.serving.repository import Version

log = logging.getLogger("tuxai.serving")
REFERENCE_FILE = "drift-reference.json"


def reference_path(version_path: Path) -> Path:
    """Where a version's reference is: in its directory, or beside a single model file."""
    if version_path.is_dir():
        return version_path / REFERENCE_FILE
    return version_path.with_name(f"{version_path.stem}.{REFERENCE_FILE}")


class DriftBoard:
    """Windows by (model, version), made on a version's first request from its reference file; made
    again when the version's files change (its stamp: a new reference is read)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, int], tuple[object, Window | None]] = {}
        self.closed: dict[tuple[str, int], int] = {}  # windows closed per version

    def window(self, version: Version) -> Window | None:
        """The version's window (None when it has no reference, or an unreadable one: logged once)."""
        key = (version.name, version.number)
        held = self._windows.get(key)
        if held is None or held[0] != version.stamp:
            path = reference_path(version.path)
            window = None
            if path.is_file():
                try:
                    reference = Reference.from_json(json.loads(path.read_text()), str(path))
                    window = Window(reference, version.config.drift_window)
                except (OSError, ValueError, UsageError) as exc:
                    log.error("drift: %s is not used: %s", path, exc)
            held = self._windows[key] = (version.stamp, window)
        return held[1]

    def observe(self, version: Version, inputs: Mapping[str, Any]) -> Verdict | None:
        """Count a request's input tensors in the version's window; the verdict if this closed it. A tensor
        the reference cannot bin (text where it has numbers) is logged and left out: never the request's fault."""
        window = self.window(version)
        if window is None:
            return None
        columns: dict[str, Any] = {}
        for input_name, tensor in inputs.items():
            columns |= columns_of(input_name, tensor)
        key = (version.name, version.number)
        try:
            verdict = window.add(columns)
        except (ValueError, TypeError) as exc:
            log.error("drift: model %s version %s: a request's inputs not counted: %s", *key, exc)
            return None
        if verdict is not None:
            self.closed[key] = self.closed.get(key, 0) + 1
            if verdict.drifted:
                log.warning("drift: model %s version %s: %s", *key, verdict.summary())
        return verdict

    def text(self) -> str:
        """Each version's last verdict as gauges (a version whose first window is still open: none yet)."""
        out = Exposition()
        done = sorted((k, w.last) for k, (_, w) in self._windows.items() if w is not None and w.last is not None)
        out.family("tuxai_serve_drift", "gauge", "1 when the last closed window drifted on some feature.",
                   [(labels(model=m, version=str(v)), float(bool(last.drifted))) for (m, v), last in done])  # fmt: skip
        for name, help_text, field in (
            ("tuxai_serve_drift_psi", "Population stability index of a feature in the last window.", "psi"),
            ("tuxai_serve_drift_js", "Jensen-Shannon distance (base 2) of a feature in the last window.", "js"),
        ):
            rows = [
                (labels(model=m, version=str(v), feature=f), float(getattr(verdict, field)))
                for (m, v), last in done
                for f, verdict in sorted(last.features.items())
            ]
            out.family(name, "gauge", help_text, rows)
        closed = [(labels(model=m, version=str(v)), float(n)) for (m, v), n in sorted(self.closed.items())]
        out.family("tuxai_serve_drift_windows_total", "counter", "Drift windows closed per model version.", closed)
        return out.text()
