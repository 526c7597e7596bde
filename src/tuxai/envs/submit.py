"""The environment a ``tuxai submit --env`` uses on the submitting machine: built or reused as
``tuxai.envs.ensure_env`` does, pip's settings kept (``envs.pip_kept.kept_for``) in the cache."""

from __future__ import annotations

import os
from pathlib import Path

from tuxai.envs import ensure_env, user_cache
from tuxai.envs.cache import record_use
from tuxai.envs.pip_kept import kept_for


def submit_env(source: str, shared: Path) -> str:
    """The environment of ``--env source``: in ``shared`` (the daemon's ``<home>/envs``) when this user may
    write there, else in their own cache; its use recorded (`tuxai env ls`, `tuxai env gc`). Its path.

    Raises:
        UsageError: as ``ensure_env``.
    """
    cache = user_cache(shared, os.environ)
    settings = kept_for(cache)  # a warm submit does not wait for pip
    built = ensure_env(source, cache, settings=settings, shared=(shared,))
    record_use(built)
    return str(built)
