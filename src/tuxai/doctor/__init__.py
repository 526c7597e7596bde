"""The doctor: checks over an inventory → findings, each with its remedy."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tuxai.doctor.findings import Finding, Severity
from tuxai.doctor.framework_checks import framework_findings
from tuxai.doctor.gpu_checks import gpu_findings
from tuxai.doctor.report import Report, report_to_json
from tuxai.doctor.system_checks import system_findings
from tuxai.model.inventory import Inventory

__all__ = ["Finding", "Report", "Severity", "diagnose", "report_to_json"]


def _probe_findings(inventory: Inventory) -> Iterator[Finding]:
    for problem in inventory.problems:
        yield Finding(
            "probe.tool_output",
            Severity(problem.severity),
            f"{problem.tool}: {problem.problem}",
            f"run `{problem.tool}` by hand; send `tuxai doctor --record DIR` output with a bug report",
            problem.tool,
        )


def diagnose(inventory: Inventory, extra: Sequence[Finding] = ()) -> Report:
    """Run every check over the inventory; ``extra``: findings about this host made elsewhere."""
    findings = [
        *extra,
        *_probe_findings(inventory),
        *gpu_findings(inventory),
        *framework_findings(inventory),
        *system_findings(inventory),
    ]
    order = {Severity.ERROR: 0, Severity.WARN: 1, Severity.OK: 2}
    findings.sort(key=lambda f: order[f.severity])
    return Report(inventory, tuple(findings))
