"""The Ray executor's placement groups, kept a while after their gang ended and reused (issue 15's bench).

A group Ray just removed gives its resources back about a second later: a new group asking for the same
GPUs at once (the next job of a queue, on the GPU the scheduler hands out first) waited ~1 s for Ray to
place it, more than everything else of tuxai's start together. So a group whose bundles all carry GPUs
is named after what it holds (``tuxai-gpus-<hash of its bundles and strategy>``) and, once its gang
ended, kept idle for ``linger_s``: the next attempt asking for exactly those GPUs on those nodes takes
it as it is, with no round trip to place it. Idle groups older than ``linger_s`` are removed (Ray's
GPUs go back to Ray's other users), and so is every tuxai group that overlaps GPUs a new group asks for:
the scheduler never gives a GPU to two running jobs, so such a group is idle by construction. A group
without GPUs (a CPU-only job; two may share a node) is the attempt's own, removed when its gang ends.

A pooled group is held by the attempt that took it last (``held``): only its holder's release keeps or
removes it, so a late release of an earlier attempt (its ``kill_lost``, after another attempt took the
same GPUs) never removes the live gang's group (T5). The record lives in the daemon's memory; a graceful
stop removes the idle groups (``sweep(everything=True)``), and a daemon started again after a SIGKILL
lists tuxai's groups on the cluster (``adopt``): the group of each running job it adopts is held by that
job again, every other one (kept idle by the killed daemon, or an attempt's that ended meanwhile) is
removed, so Ray's GPUs are whole again at once, not when a new group happens to ask for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tuxai.model.gang import GPU_RESOURCE_PREFIX

GROUP_PREFIX = "tuxai-"  # every group tuxai makes: pooled (POOL_PREFIX) or an attempt's own (executor.ray)
POOL_PREFIX = "tuxai-gpus-"
LINGER_S = 10.0  # how long an idle group waits for a job asking for the same GPUs


def pool_name(bundles: Sequence[dict[str, float]], strategy: str) -> str | None:
    """The name of a group holding exactly these GPUs on these nodes; None when a bundle holds no GPU.

    >>> pool_name([{"GPU": 1.0, "tuxai_gpu_GPU-a": 1.0}], "STRICT_PACK")[:11]
    'tuxai-gpus-'
    >>> pool_name([{"CPU": 0.001}], "STRICT_PACK") is None
    True
    """
    if not bundles or not all(gpu_keys([b]) for b in bundles):
        return None
    text = json.dumps([strategy, list(bundles)], sort_keys=True)
    return POOL_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def gpu_keys(bundles: Sequence[dict[str, float]]) -> set[str]:
    """The per-GPU resources (``tuxai_gpu_<uuid>``) the bundles hold."""
    return {key for b in bundles for key in b if key.startswith(GPU_RESOURCE_PREFIX)}


class GroupPool:
    """Named groups by what they hold; idle ones kept ``linger_s`` (0: removed when their gang ends)."""

    def __init__(self, linger_s: float = LINGER_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.linger_s, self.clock = linger_s, clock
        self.idle: dict[str, float] = {}  # group name → when its gang ended
        self.held: dict[str, str] = {}  # pooled group name → the attempt (its own group name) that holds it

    def acquire(self, ray: Any, bundles: list[dict[str, float]], strategy: str, own_name: str) -> tuple[Any, str]:
        """The group for ``bundles`` and its name: an idle one holding exactly them (placed already), else a
        new one (named ``own_name`` when it holds no GPU); ``own_name``'s attempt holds it from now on."""
        name = pool_name(bundles, strategy)
        if name is not None:
            self.idle.pop(name, None)
            self.held[name] = own_name
            with contextlib.suppress(ValueError):
                return ray.util.get_placement_group(name), name
            self._remove_overlapping(ray, gpu_keys(bundles))
        from ray.util.placement_group import placement_group  # only a new group needs Ray's module here

        name = name or own_name
        return placement_group(bundles, strategy=strategy, name=name, lifetime="detached"), name

    def release(self, ray: Any, name: str, keep: bool, *, holder: str) -> None:
        """The gang of group ``name`` ended: keep the group idle (``keep``, a pooled one) or remove it now.

        ``holder``: the attempt releasing it (its own group name); a pooled group another attempt holds now
        is left alone (T5). None recorded (a gang adopted after a restart): its releaser's.
        """
        if self.held.get(name, holder) != holder:
            self.sweep(ray)
            return
        self.held.pop(name, None)
        if keep and name.startswith(POOL_PREFIX) and self.linger_s > 0:
            self.idle[name] = self.clock()
        else:
            self.idle.pop(name, None)
            _remove(ray, name)
        self.sweep(ray)

    def sweep(self, ray: Any, everything: bool = False) -> None:
        """Remove the idle groups kept longer than ``linger_s`` (``everything``: all of them)."""
        now = self.clock()
        for name, since in list(self.idle.items()):
            if (everything or now - since >= self.linger_s) and self.idle.pop(name, None) is not None:
                _remove(ray, name)  # popped once: a sweep from an API thread (a submit's read) may run beside

    def adopt(self, ray: Any, holders: Mapping[str, str]) -> list[str]:
        """At the daemon's start: each group in ``holders`` (group name → the running attempt holding it) is
        held again; every other tuxai group on the cluster is removed. Returns the names removed.

        The pool is only in memory: the groups a killed daemon kept idle would hold their GPUs in Ray's
        accounting until a new group asked for them (a Ray user beside tuxai waited on them).
        """
        from ray.util.placement_group import placement_group_table

        removed = []
        for info in placement_group_table().values():
            name = str(info.get("name", ""))
            if not name.startswith(GROUP_PREFIX) or info.get("state") == "REMOVED":
                continue
            if name in holders:
                if name.startswith(POOL_PREFIX):
                    self.held[name] = holders[name]
            elif name not in self.idle and name not in self.held:
                _remove(ray, name)
                removed.append(name)
        return removed

    def _remove_overlapping(self, ray: Any, keys: set[str]) -> None:
        """Remove every tuxai group that holds one of ``keys`` (idle: tuxai never gives a GPU twice)."""
        from ray.util.placement_group import placement_group_table

        for info in placement_group_table().values():
            name = str(info.get("name", ""))
            held = {k for bundle in (info.get("bundles") or {}).values() for k in bundle}
            if name.startswith(POOL_PREFIX) and info.get("state") != "REMOVED" and held & keys:
                self.idle.pop(name, None)
                self.held.pop(name, None)
                _remove(ray, name)


def _remove(ray: Any, name: str) -> None:
    with contextlib.suppress(ValueError):
        ray.util.remove_placement_group(ray.util.get_placement_group(name))
