"""Quotas as the daemon applies them (the policy is ``scheduler.quotas``): read from the config
file's ``limits:`` section, checked at submit (``max_time``, ``max_pending``, a GPU count over
``max_gpus``), counted for the scheduler (GPU-hours in the window, from the store's history) and
shown (``GET /v1/limits``, ``tuxai status``).

A job belongs to the unix groups it was submitted with (its gid and supplementary groups, from
``SO_PEERCRED``/``SO_PEERGROUPS``), by name.
"""

from __future__ import annotations

import dataclasses
import functools
import grp
import logging
import math
import pwd
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tuxai.daemon.config import Caller, DaemonConfig
from tuxai.errors import TuxaiError, UsageError
from tuxai.model.job import JobRecord, JobSpec, JobState
from tuxai.model.mapping import MappingReader
from tuxai.model.wire import AccountUse, CapView, LimitsView
from tuxai.scheduler.quotas import Cap, Quotas, parse_quotas, window_text
from tuxai.settings import limits_section
from tuxai.store.jobs import Store

if TYPE_CHECKING:
    from tuxai.daemon.core import Daemon

WAITING = (JobState.PENDING, JobState.REQUEUED)
log = logging.getLogger("tuxai.daemon")


def load_quotas(reader: MappingReader | None) -> Quotas:
    """The config file's ``limits:`` (``settings.limits_section``) → ``Quotas``; users and groups must exist.

    Raises:
        ConfigError: a bad key or value, or a user or group this machine does not know (file and field named).
    """
    if reader is None:
        return Quotas()
    quotas = parse_quotas(reader)
    for section, lookup in (("users", pwd.getpwnam), ("groups", grp.getgrnam)):
        for name in getattr(quotas, section):
            if not _exists(lookup, name):
                database = "passwd" if section == "users" else "group"
                raise reader.child(section).problem(
                    f"no {section[:-1]} {name!r} on this machine (`getent {database} {name}` finds none)"
                )
    return quotas


def reload_quotas(daemon: Daemon, config_file: Path | None) -> bool:
    """SIGHUP (``systemctl reload``): read the config file's ``limits:`` again and schedule with it; a bad
    file is logged in one line and the limits in force stay. Returns whether they were replaced."""
    try:
        quotas = load_quotas(limits_section(config_file=config_file))
    except TuxaiError as exc:
        log.error("limits not reloaded, the old ones stay: %s", exc.message)
        return False
    daemon.config = dataclasses.replace(daemon.config, quotas=quotas)
    daemon.window_use.at = -math.inf  # count GPU-hours over the new window at the next pass
    daemon.wake.set()
    log.info("limits reloaded: %d users, %d groups", len(quotas.users), len(quotas.groups))
    return True


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    """Whether ``pwd.getpwnam`` or ``grp.getgrnam`` knows ``name``."""
    try:
        lookup(name)
    except KeyError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def job_groups(job: JobRecord) -> tuple[str, ...]:
    """The names of the groups ``job`` was submitted with (its gid first)."""
    return tuple(dict.fromkeys(_group_name(g) for g in (job.gid, *job.groups)))


def caller_groups(caller: Caller) -> tuple[str, ...]:
    """The names of the caller's groups (as ``job_groups`` names a job's)."""
    return tuple(dict.fromkeys(_group_name(g) for g in (caller.gid, *caller.groups)))


def check_submit(config: DaemonConfig, store: Store, spec: JobSpec, caller: Caller) -> JobSpec:
    """The spec as it may be queued: refused over ``max_time``, ``max_pending`` or (never to fit)
    ``max_gpus``; without ``--time`` under a ``max_time``, it gets that limit.

    Raises:
        UsageError: one line naming the cap, its value and where it is set, and what to do.
    """
    quotas = config.quotas
    if quotas.empty:
        return spec
    caps = quotas.caps_of(caller.user, caller_groups(caller))
    for cap in caps:
        if cap.name == "max_time_s":
            spec = _check_time(spec, cap, config.scheduler.default_time_limit_s)
        elif cap.name == "max_gpus" and spec.request.gpu_equivalents > cap.value + 1e-9:
            whose = "your" if cap.kind == "user" else f"group {cap.who}'s"
            raise UsageError(
                f"{spec.request.gpu_equivalents:g} GPUs exceeds {whose} limit of {cap.value:g} at once ({cap.path})",
                hint=f"ask root, or submit with --gpus {int(cap.value)}" if cap.value >= 1 else "ask root",
            )
    pending = [c for c in caps if c.name == "max_pending"]
    if pending:
        _check_pending(store, caller, pending, len(spec.array.indices) if spec.array else 1)
    return spec


def _check_time(spec: JobSpec, cap: Cap, default_s: float) -> JobSpec:
    whose = "your" if cap.kind == "user" else f"group {cap.who}'s"
    if spec.time_limit_s is None:
        return spec if default_s <= cap.value else dataclasses.replace(spec, time_limit_s=cap.value)
    if spec.time_limit_s > cap.value:
        limit = window_text(cap.value)
        raise UsageError(
            f"time limit {window_text(spec.time_limit_s)} exceeds {whose} limit of {limit} ({cap.path})",
            hint=f"ask root, or submit with --time {limit}",
        )
    return spec


def _check_pending(store: Store, caller: Caller, caps: list[Cap], adding: int) -> None:
    """Refuse a submit of ``adding`` jobs (an array's tasks) that would put more than a cap waiting."""
    waiting = store.jobs(list(WAITING))
    for cap in caps:
        if cap.kind == "user":
            count = sum(1 for j in waiting if j.user == caller.user)
            who = f"you have {count} jobs waiting"
        else:
            count = sum(1 for j in waiting if cap.who in job_groups(j))
            who = f"group {cap.who} has {count} jobs waiting"
        if count + adding > cap.value:
            adds = f" and this submit adds {adding}" if adding > 1 else ""
            raise UsageError(
                f"{who}{adds}, the limit is {cap.value:g} ({cap.path})",
                hint="submit again once some have started, or cancel some (`tuxai ls --mine`); or ask root",
            )


def window_use(quotas: Quotas, store: Store, now: float, always: bool = False) -> dict[str, float]:
    """GPU-seconds each user and ``@group`` used in the quotas' window (every attempt, the running ones up
    to ``now``); empty when no cap counts GPU-hours, unless ``always``."""
    every = (quotas.default, *quotas.users.values(), *quotas.groups.values())
    if not always and all(c.gpu_hours is None for c in every):
        return {}
    since = now - quotas.window_s
    used: dict[str, float] = {}
    for run in store.runs_since(since):
        seconds = max(0.0, min(now, run.ended if run.ended is not None else now) - max(since, run.started))
        for key in (run.user, *(f"@{_group_name(g)}" for g in dict.fromkeys((run.gid, *run.groups)))):
            used[key] = used.get(key, 0.0) + seconds * run.gpus
    return used


class WindowUse:
    """``window_use`` for the control loop, made again at most every ``every_s``: a tick may come on every
    submit, and GPU-hours a few seconds old hold the same jobs (3,650 jobs in the window: ~0.1 s to count)."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s, self.at, self.used = every_s, -math.inf, dict[str, float]()

    def get(self, quotas: Quotas, store: Store, now: float) -> dict[str, float]:
        """The GPU-seconds in the window by user and ``@group``, at most ``every_s`` old."""
        if now - self.at >= self.every_s or now < self.at:
            self.used, self.at = window_use(quotas, store, now), now
        return self.used


def limits_view(config: DaemonConfig, store: Store, caller: Caller, now: float) -> LimitsView:
    """The caller's user and groups (root: itself first, then every user with jobs or caps, every group with
    caps): their caps beside their use."""
    quotas = config.quotas
    active = store.jobs([JobState.RUNNING, *WAITING])
    use = window_use(quotas, store, now, always=True)
    held: dict[str, float] = {}
    pending: dict[str, int] = {}
    for job in active:
        for key in (job.user, *(f"@{g}" for g in job_groups(job))):
            if job.state is JobState.RUNNING:
                held[key] = held.get(key, 0.0) + job.spec.request.gpu_equivalents
            else:
                pending[key] = pending.get(key, 0) + 1
    if caller.admin:
        users: Iterable[str] = [caller.user, *sorted(({j.user for j in active} | set(quotas.users)) - {caller.user})]
        groups: Iterable[str] = sorted(quotas.groups)
    else:
        users, groups = [caller.user], [g for g in caller_groups(caller) if g in quotas.groups]
    accounts = []
    for kind, names in (("user", users), ("group", groups)):
        for name in names:
            key = name if kind == "user" else f"@{name}"
            caps = quotas.user_caps(name) if kind == "user" else quotas.group_caps(name)
            views = tuple(CapView(c.name.removesuffix("_s"), c.value, c.path) for c in caps)
            hours = use.get(key, 0.0) / 3600
            accounts.append(AccountUse(kind, name, held.get(key, 0.0), hours, pending.get(key, 0), views))
    return LimitsView(quotas.window_s, tuple(accounts))
