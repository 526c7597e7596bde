"""A job attempt's control groups, as the daemon plans them and the shim makes them.

``CgroupPlan`` travels in ``launch.json``: the directories of the job's groups (one per
controller on cgroup v1, one ``unified`` on v2), and on a systemd host the transient scope
systemd makes around the job (``SystemdUnit``). An empty plan: the job gets no cgroup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SystemdUnit:
    """The job's slice and scope, and the properties systemd enforces on the scope."""

    slice: str
    scope: str
    properties: tuple[str, ...] = ()
    version: int = 0  # of systemd-run: what its command line may say


@dataclass(frozen=True)
class CgroupPlan:
    """The groups of one attempt (``dirs``: controller → directory; ``unified`` on v2)."""

    version: int = 0
    dirs: Mapping[str, str] = field(default_factory=dict)
    systemd: SystemdUnit | None = None

    def __bool__(self) -> bool:
        return bool(self.dirs)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``launch.json``)."""
        data: dict[str, Any] = {"version": self.version, "dirs": dict(self.dirs)}
        if self.systemd is not None:
            unit = self.systemd
            data["systemd"] = {
                "slice": unit.slice, "scope": unit.scope, "properties": list(unit.properties), "version": unit.version
            }  # fmt: skip
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CgroupPlan:
        """The plan back from its JSON form (an empty mapping: no cgroup).

        >>> CgroupPlan.from_dict({"version": 1, "dirs": {"pids": "/p"}}).dirs["pids"]
        '/p'
        """
        if not data:
            return cls()
        unit = data.get("systemd")
        systemd = None
        if unit:
            systemd = SystemdUnit(
                str(unit["slice"]), str(unit["scope"]), tuple(unit.get("properties", ())), int(unit.get("version", 0))
            )
        dirs = {str(k): str(v) for k, v in dict(data.get("dirs", {})).items()}
        return cls(int(data.get("version", 0)), dirs, systemd)
