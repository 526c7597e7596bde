"""What the doctor says: findings with an id, a severity, a message and a remedy."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is; ``ok`` findings report a value and its effect."""

    OK = "ok"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    """One observation: ``message`` states the observed value, ``remedy`` what to do."""

    id: str
    severity: Severity
    message: str
    remedy: str = ""
    subject: str = "host"
