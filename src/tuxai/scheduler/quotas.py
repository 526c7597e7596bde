"""Quotas (Slurm's association and QOS limits): caps per user, per unix group and by default.

    limits:                       # the config file's top-level section (docs/jobs.md)
      window: 7d                  # GPU-hours are counted over this rolling window
      default: {max_gpus: 4, gpu_hours: 200, max_time: 2d, max_pending: 50}
      users:  {alice: {max_gpus: 8}}
      groups: {students: {max_gpus: 4}}   # the members together

A user's own caps are their ``users`` entry, field by field over ``default``. A ``groups`` entry
caps its members together (Slurm's GrpTRES). ``max_gpus`` and ``gpu_hours`` hold a job pending
(``Tally.blocked``, inside ``decide``); ``max_time`` and ``max_pending`` are checked at submit by
the daemon with ``caps_of``. Pure: usage comes in the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tuxai.errors import ConfigError
from tuxai.model.mapping import MappingReader, load_mapping, read_dataclass, rules

CAP_FIELDS = ("max_gpus", "gpu_hours", "max_time_s", "max_pending")
DEFAULT_WINDOW_S = 7 * 86400.0
_HINT = "docs/jobs.md, 'Limits and quotas', lists the keys"


@dataclass(frozen=True)
class Caps:
    """One entry of ``limits:``; None: no cap of that kind."""

    max_gpus: float | None = field(default=None, metadata=rules("GPUs held at once (slices count their share)"))
    gpu_hours: float | None = field(default=None, metadata=rules("GPU-hours used in the rolling window"))
    max_time_s: float | None = field(
        default=None, metadata=rules("a job's longest time limit", duration=True, bare_s=60)
    )
    max_pending: int | None = field(default=None, metadata=rules("jobs waiting at once"))


@dataclass(frozen=True)
class Cap:
    """One cap that applies to a job: whose (``user`` alice or ``group`` students), which, how much, where set."""

    kind: str  # "user" or "group"
    who: str
    name: str  # a field of Caps
    value: float
    path: str  # limits.users.alice.max_gpus: what the config file says

    @property
    def key(self) -> str:
        """The usage key of its holder: the user's name, or ``@group``."""
        return self.who if self.kind == "user" else f"@{self.who}"


@dataclass(frozen=True)
class Quotas:
    """Every cap of ``limits:``; ``window_s``: how far back GPU-hours count (rolling, no midnight cliff)."""

    default: Caps = field(default_factory=Caps)
    users: Mapping[str, Caps] = field(default_factory=dict)
    groups: Mapping[str, Caps] = field(default_factory=dict)
    window_s: float = DEFAULT_WINDOW_S

    @property
    def empty(self) -> bool:
        """No cap at all: nothing to count."""
        return all(c == Caps() for c in (self.default, *self.users.values(), *self.groups.values()))

    def caps_of(self, user: str, groups: Iterable[str] = ()) -> list[Cap]:
        """The caps on a job of ``user`` in ``groups``: the user's (own or default, per field), then each group's."""
        return [*self.user_caps(user), *(cap for group in sorted(set(groups)) for cap in self.group_caps(group))]

    def user_caps(self, user: str) -> list[Cap]:
        """``user``'s own caps: their entry's fields, else ``default``'s."""
        own = self.users.get(user)
        found = []
        for name in CAP_FIELDS:
            value = getattr(own, name) if own is not None else None
            path = f"limits.users.{user}.{_key(name)}"
            if value is None:
                value, path = getattr(self.default, name), f"limits.default.{_key(name)}"
            if value is not None:
                found.append(Cap("user", user, name, float(value), path))
        return found

    def group_caps(self, group: str) -> list[Cap]:
        """The caps ``group``'s members share (none when it has no entry)."""
        caps = self.groups.get(group)
        if caps is None:
            return []
        values = ((name, getattr(caps, name)) for name in CAP_FIELDS)
        return [
            Cap("group", group, n, float(v), f"limits.groups.{group}.{_key(n)}") for n, v in values if v is not None
        ]


def _key(name: str) -> str:
    return name.removesuffix("_s")


def window_text(seconds: float) -> str:
    """``7d``, ``24h``, ``90m``: a window as people write it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_quotas(reader: MappingReader) -> Quotas:
    """The config file's ``limits:`` mapping → ``Quotas``; every error names the file and the field.

    Raises:
        ConfigError (the reader's error): an unknown key, a bad value, an entry that is not a mapping.
    """
    reader.reject_unknown(("window", "default", "users", "groups"))
    window = reader.duration("window", DEFAULT_WINDOW_S, above=0)
    default = read_dataclass(Caps, reader.child("default"), minimum=0)
    named: dict[str, dict[str, Caps]] = {}
    for section in ("users", "groups"):
        entries = reader.child(section)
        named[section] = {}
        for name in entries.data:
            if not isinstance(name, str) or not name:
                raise entries.problem(f"{name!r} is not a {section[:-1]} name")
            named[section][name] = read_dataclass(Caps, entries.child(name), minimum=0)
    return Quotas(default, named["users"], named["groups"], float(window or DEFAULT_WINDOW_S))


def quotas_from_text(text: str, origin: str) -> Quotas:
    """A whole YAML file's ``limits:`` section → ``Quotas`` (``parse_quotas`` of it)."""
    return parse_quotas(load_mapping(text, origin, ConfigError, hint=_HINT).child("limits"))


class Tally:
    """GPUs held (from the running jobs, and the starts of this pass) and GPU-seconds used in the
    window (``Snapshot.quota_use``), per user and per ``@group``: what ``blocked`` compares with caps."""

    def __init__(
        self, quotas: Quotas, running: Iterable[tuple[str, Iterable[str], float]], used_s: Mapping[str, float]
    ):
        self.quotas, self.used_s, self.none = quotas, used_s, quotas.empty
        self.held: dict[str, float] = {}
        for user, groups, gpus in running:
            self.take(user, groups, gpus)

    def take(self, user: str, groups: Iterable[str], gpus: float) -> None:
        """Count ``gpus`` as held by ``user`` and their groups (a job started)."""
        for key in (user, *(f"@{g}" for g in groups)):
            self.held[key] = self.held.get(key, 0.0) + gpus

    def blocked(self, user: str, groups: Iterable[str], gpus: float) -> str | None:
        """Why a job asking ``gpus`` must wait for a cap, with the numbers; None when no cap holds it.

        ``user limit: alice holds 4 of 4 GPUs, this job asks 1 (limits.users.alice.max_gpus)``
        """
        if gpus <= 0 or self.none:
            return None
        for cap in self.quotas.caps_of(user, groups):
            holder = f"{cap.kind} limit: {cap.who if cap.kind == 'user' else 'group ' + cap.who}"
            if cap.name == "max_gpus":
                held = self.held.get(cap.key, 0.0)
                if held + gpus > cap.value + 1e-9:
                    verb = "holds" if cap.kind == "user" else "hold"
                    return f"{holder} {verb} {held:g} of {cap.value:g} GPUs, this job asks {gpus:g} ({cap.path})"
            elif cap.name == "gpu_hours":
                used_h = self.used_s.get(cap.key, 0.0) / 3600
                if used_h >= cap.value:
                    window = window_text(self.quotas.window_s)
                    return (
                        f"{holder} used {used_h:.1f} of {cap.value:g} GPU-hours in the last {window} ({cap.path});"
                        " it starts as older use leaves the window"
                    )
        return None
