"""The store: SQLite (WAL), numbered migrations, the only SQL in the tree."""

from tuxai.errors import StoreError
from tuxai.store.jobs import Store

__all__ = ["Store", "StoreError"]
