"""``Database``: the one SQLite connection of a daemon, its migrations and its transactions.

Every table (jobs, events, usage, telemetry) lives in one file and goes through this:
``write(durable)`` is one ``BEGIN IMMEDIATE`` transaction, rolled back on any error with a
``StoreError`` that says what to do; ``read()`` holds the lock for a consistent read. One
process writes (the daemon); its threads share the connection behind one lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tuxai.errors import StoreError
from tuxai.store.schema import MIGRATIONS


def disk_hint(exc: Exception) -> str:
    """What a person can do about a failed write."""
    text = str(exc).lower()
    if "full" in text or "disk i/o" in text:
        return "free disk space under the tuxai home and retry; nothing was written"
    if "readonly" in text or "read-only" in text:
        return "the store is read-only: check the permissions of the tuxai home"
    return "see the daemon log; the store was left as it was"


class Database:
    """One SQLite file in WAL mode, migrated to the newest schema on open.

    Raises (on open):
        StoreError: the file cannot be created, is damaged, or is newer than this tuxai.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._durable = True
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {path}: {exc}", hint=disk_hint(exc)) from None
        except OSError as exc:
            raise StoreError(f"cannot create the store {path}: {exc.strerror}", hint=disk_hint(exc)) from None

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the store {self.path} has schema version {version}, newer than this tuxai ({len(MIGRATIONS)})",
                hint="upgrade tuxai, or point --home elsewhere",
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.write():
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number}")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, for reads."""
        with self._lock:
            yield self._db

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; rolled back (store intact) on any error.

        ``durable``: fsync at commit (the default); False for the control loop's own records.

        Raises:
            StoreError: it could not begin or commit (a full disk, a damaged page, read-only).
        """
        with self._lock:
            try:
                if durable != self._durable:
                    self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                    self._durable = durable
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store {self.path}: {exc}", hint=disk_hint(exc)) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()  # SQLite may have rolled back already (a full disk does)
                raise StoreError(f"cannot write the store {self.path}: {exc}", hint=disk_hint(exc)) from None
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
