"""The doctor's report and its versioned JSON form (schema in ``doctor-report.schema.json``)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import Any

from tuxai import __version__
from tuxai.doctor.findings import Finding, Severity
from tuxai.model.inventory import Inventory

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Report:
    """An inventory and what the doctor found in it."""

    inventory: Inventory
    findings: tuple[Finding, ...]

    def count(self, severity: Severity) -> int:
        """How many findings have this severity."""
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def exit_code(self) -> int:
        """0 without error findings, 1 with."""
        return 1 if self.count(Severity.ERROR) else 0


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums and tuples → plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def report_to_json(report: Report) -> dict[str, Any]:
    """The report as the documented JSON document (``docs/doctor-json.md``)."""
    inventory = report.inventory
    links = [[{"label": link.label, **to_jsonable(link)} for link in row] for row in inventory.links.links]
    system = to_jsonable(inventory.system)
    system["visible_devices_env"] = dict(inventory.system.visible_devices_env)
    return {
        "schema_version": SCHEMA_VERSION,
        "tuxai_version": __version__,
        "source": inventory.source,
        "host": to_jsonable(inventory.host),
        "cpu": to_jsonable(inventory.cpu),
        "gpus": to_jsonable(inventory.gpus),
        "links": links,
        "frameworks": to_jsonable(inventory.frameworks),
        "system": system,
        "problems": to_jsonable(inventory.problems),
        "findings": to_jsonable(report.findings),
        "summary": {s.value: report.count(s) for s in Severity},
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema the ``--json`` output follows."""
    text = resources.files("tuxai.doctor").joinpath("doctor-report.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema
