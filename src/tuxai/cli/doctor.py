"""``tuxai doctor``: pick the source, probe, diagnose, render."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from tuxai.doctor import diagnose, report_to_json
from tuxai.errors import UsageError
from tuxai.hardware.probe import ProbeOptions, collect_inventory
from tuxai.hardware.simulated import load_inventory_file
from tuxai.hardware.source import LiveSource, RecordingSource, ReplaySource, Source
from tuxai.settings import load_settings


def run_doctor(
    *,
    as_json: bool,
    frameworks: bool,
    inventory: Path | None,
    record: Path | None,
    replay: Path | None,
    python: str | None,
) -> int:
    """Run the doctor once; returns the exit status (0 clean, 1 with error findings).

    Raises:
        UsageError: conflicting options or an unreadable input.
    """
    settings = load_settings({"inventory": inventory, "python": python})
    chosen = [name for name, value in (("--inventory", inventory), ("--record", record), ("--replay", replay)) if value]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} cannot be used together", "pick one source for the report")
    if settings.inventory is not None and not (record or replay):
        machine = load_inventory_file(settings.inventory)
    else:
        source: Source
        if replay is not None:
            source = ReplaySource(replay)
        elif record is not None:
            source = RecordingSource(record, settings.probe_timeout_s)
        else:
            source = LiveSource(settings.probe_timeout_s)
        options = ProbeOptions(
            frameworks=frameworks, python=settings.python, framework_timeout_s=settings.framework_timeout_s
        )
        machine = collect_inventory(source, options)
    extra = []
    if settings.inventory is None and replay is None and record is None:
        # The host itself, live (a recording replays without these): what its jobs will get.
        from tuxai.doctor.container_checks import container_findings
        from tuxai.doctor.jobs_checks import jobs_findings
        from tuxai.envs import read_pip_settings
        from tuxai.hardware.cgroups import detect_cgroups
        from tuxai.hardware.containers import probe_container_host

        extra = jobs_findings(detect_cgroups(), read_pip_settings())
        extra += container_findings(probe_container_host(), machine.gpus)  # what --image jobs need (issue 19)
    report = diagnose(machine, extra)
    if as_json:
        print(json.dumps(report_to_json(report), indent=2))
    else:
        from tuxai.cli.render_doctor import render_report

        render_report(report, Console())
    return report.exit_code
