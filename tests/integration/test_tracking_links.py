"""U4: root's tracked submit, with its HOME in a user's folder (``sudo -E``), follows no link that user put there.

``watch.log``, the watcher's lock, the ledgers and the run desk's folder were found by path: only the
last component of ``open/`` was checked, so nobody's link ``<tracking dir>/watch.log`` made root create
a file where nobody pointed. Now every component of the tracking folder's path must be root's or the
caller's, writable by no one else, reached through no link (``run_desk.open_path``), and the files are
opened under that descriptor; otherwise the submit says so in one line and writes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuxai.errors import TuxaiError
from tuxai.lifecycle.desk_client import ask
from tuxai.lifecycle.job_tracking import open_dir, write_ledger
from tuxai.lifecycle.job_watch import lock_watcher, start_watcher

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="root follows nobody's (uid 65534) links: needs root")


def _nobodys(path: Path) -> Path:
    """``path`` made as nobody would make it: each new folder nobody's."""
    for part in reversed([path, *path.parents]):
        if not part.exists():
            part.mkdir(mode=0o755)
            os.chown(part, NOBODY, NOBODY)
    return path


def _refused(folder: Path, why: str) -> None:
    """Every tracked submit's write under ``folder`` (and its parent) refused in one line."""
    entry = {"home": "/nowhere", "job": 1, "run": "r1", "experiment": "tuxai"}
    for attempt in (
        lambda: write_ledger(folder, entry),
        lambda: lock_watcher(folder),
        lambda: start_watcher(folder, os.open(os.devnull, os.O_RDONLY)),  # nothing started: refused first
        lambda: ask(folder, {"op": "open"}),
    ):
        with pytest.raises(TuxaiError, match=why) as caught:
            attempt()
        assert "\n" not in str(caught.value)


def test_U4_a_tracked_submit_never_follows_a_link_in_its_tracking_folder(tmp_path: Path) -> None:
    base = tmp_path  # root's; nobody's folder in it is made as nobody would make it
    secret = base / "rootonly"
    secret.mkdir(mode=0o700)
    data = base / "nobody" / ".local" / "share"
    mlflow = _nobodys(data / "tuxai" / "mlflow")  # nobody's own tracking folder, root's HOME in it (sudo -E)
    (mlflow / "watch.log").symlink_to(secret / "created-by-root")
    os.lchown(mlflow / "watch.log", NOBODY, NOBODY)
    folder = open_dir({"XDG_DATA_HOME": str(data)})
    _refused(folder, "belongs to another user")
    assert not (mlflow / "open").exists()

    linked = base / "root" / "share"  # root's own path, its tracking folder a link: never followed
    (linked / "tuxai").mkdir(parents=True)
    (linked / "tuxai" / "mlflow").symlink_to(secret)
    _refused(open_dir({"XDG_DATA_HOME": str(linked)}), "a link is never followed")
    assert list(secret.iterdir()) == []  # root created nothing where the links pointed


def test_U4_a_tracking_folder_on_roots_own_path_still_works(tmp_path: Path) -> None:
    folder = open_dir({"XDG_DATA_HOME": str(tmp_path / "root" / "share")})
    ledger = write_ledger(folder, {"home": "/nowhere", "job": 1, "run": "r1", "experiment": "tuxai"})
    assert ledger.read_text().startswith("{") and (folder.stat().st_mode & 0o777) == 0o700
    lock_fd = lock_watcher(folder)
    assert lock_fd is not None
    os.close(lock_fd)
