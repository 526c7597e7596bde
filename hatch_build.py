"""The wheel's build hook: the dashboard's chart library (uPlot, from npm) built into the package when the
tree does not hold it yet, as in a wheel built from the sdist (the sdist carries ``web/``, never the built
files). ``make ui-assets`` does the same step beforehand; a tree that did it is left as it is.

Without npm the build stops with one line saying so: a wheel without the charts is never made silently.
An editable install (a developer's tree) skips the step: the pages then serve their tables alone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILT = Path("src", "tuxai", "ui", "static", "dist", "uplot.js")


class ChartAssetsHook(BuildHookInterface):
    """Runs ``npm ci --ignore-scripts`` and ``node build.mjs`` in ``web/`` before a standard wheel is built
    without them."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Build the chart assets when a standard wheel is built from a tree without them."""
        root = Path(self.root)
        if version == "editable" or (root / BUILT).is_file():
            return
        web = root / "web"
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            raise SystemExit(
                "tuxai: the wheel needs the dashboard's chart library, built from npm, and npm is not on PATH"
                " (install it: apt install npm; or build from a tree where `make ui-assets` ran)"
            )
        try:
            # --ignore-scripts: no package's install script runs where the wheel is built (H1)
            install = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]
            subprocess.run(install, cwd=web, check=True)
            subprocess.run([node, "build.mjs"], cwd=web, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SystemExit(f"tuxai: building the dashboard's chart library in {web} failed: {exc}") from None
