"""``tuxai ui``: a one-time link to the web dashboard, asked of the daemon over its Unix socket (the
OS says who you are), printed, and opened in a browser where this session has a display."""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path

from tuxai.cli.common import daemon_client


def run_ui(home: Path | None, open_browser: bool) -> int:
    """Print the login link (good once, for ``expires_s``); open it when asked and a display exists."""
    with daemon_client(home) as client:
        login = client.ui_login()
    print(login.url)
    print(f"(good once, for {login.expires_s:.0f} s: it logs this browser in as you; run `tuxai ui` again for another)")
    if open_browser and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        webbrowser.open(login.url)
    return 0
