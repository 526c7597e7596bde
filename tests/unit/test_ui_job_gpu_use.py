"""Issue 18 gap 1: each job's mean GPU utilization and peak GPU memory, folded from the telemetry
thread's samples as the job runs (so whole when it ends), in ``tuxai show``'s energy and on the Jobs page.
A real ``TelemetryLoop`` steps over a real ``Daemon`` and store (the executor faked: no process runs)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.fake_executor import FakeExecutor
from tests.unit.test_daemon_races import ADA, REPO, T0
from tuxai.api.views import job_view
from tuxai.cli.jobs import _gpu_use_rows
from tuxai.daemon.config import DaemonConfig
from tuxai.daemon.core import Daemon
from tuxai.daemon.telemetry import TelemetryLoop
from tuxai.hardware.simulated import load_inventory_file
from tuxai.model.job import JobState
from tuxai.model.jobfile import spec_from_dict
from tuxai.model.wire import EnergyTotals, from_json
from tuxai.store.job_gpu_use import GpuUse, JobGpuUseStore, fold
from tuxai.store.jobs import Store
from tuxai.store.telemetry import SampleRow
from tuxai.telemetry.collector import Telemetry, TelemetryConfig
from tuxai.telemetry.samples import GpuSample
from tuxai.ui.pages import jobs_page

GIB = 2**30


class ScriptedSampler:
    """Each GPU's utilization and memory as the test sets them (``plan``: GPU → (util %, GiB))."""

    method = "scripted"

    def __init__(self) -> None:
        self.plan: dict[int, tuple[float | None, float]] = {}

    def sample(self, now: float, busy: Mapping[int, float]) -> list[GpuSample]:
        """One sample per GPU of 8."""
        return [
            GpuSample(i, None, now, self.plan.get(i, (0.0, 0.0))[0], int(self.plan.get(i, (0.0, 0.0))[1] * GIB),
                      80 * GIB, 100.0, 400.0)
            for i in range(8)
        ]  # fmt: skip


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Daemon, TelemetryLoop, ScriptedSampler]]:
    inventory = load_inventory_file(REPO / "examples" / "inventories" / "dgx-a100.yaml")
    store = Store(tmp_path / "tuxai.db")
    daemon = Daemon(DaemonConfig(tmp_path, inventory, online_cpus=(0, 1)), store, FakeExecutor())
    sampler = ScriptedSampler()
    try:
        yield daemon, TelemetryLoop(daemon, Telemetry(sampler, TelemetryConfig())), sampler
    finally:
        store.close()


def test_E18_1_fold_means_a_jobs_gpus_and_keeps_the_peak_memory() -> None:
    rows = [SampleRow(0, 1.0, 40.0, 5.0, None, None, None), SampleRow(1, 1.0, None, 9.0, None, None, None)]
    assert fold(rows, {7: (0, 1), 8: (3,)}) == {7: GpuUse(40.0, 1, 9.0)}  # an unsaid util is not a 0
    assert fold(rows, {9: (1,)}) == {9: GpuUse(0.0, 0, 9.0)} and GpuUse(0.0, 0, 9.0).util_mean_pct is None


def test_E18_1_a_jobs_mean_gpu_util_and_peak_memory_in_show_and_on_the_jobs_page(
    rig: tuple[Daemon, TelemetryLoop, ScriptedSampler],
) -> None:
    daemon, loop, sampler = rig
    job_id = daemon.submit(spec_from_dict({"command": ["python", "t.py"], "gpus": 2}, origin="test"), ADA, {}, T0)
    daemon.tick(T0)
    job = daemon.store.get(job_id)
    assert job.state is JobState.RUNNING and job.allocation is not None
    first, second = (g.index for g in job.allocation.gpus)
    for step, (util, memory) in enumerate(((20.0, 10.0), (60.0, 30.0), (40.0, 20.0))):
        sampler.plan = {first: (util, memory), second: (util + 20.0, memory / 2), 7 - first: (99.0, 79.0)}
        loop.step(T0 + 1 + step)
    # Three steps, each the mean of its two GPUs: (30 + 70 + 50) / 3 = 50 %; the peak any of them held: 30 GiB.
    assert JobGpuUseStore(daemon.store).of([job_id]) == {job_id: GpuUse(150.0, 3, 30.0 * GIB)}
    energy = from_json(EnergyTotals, loop.energy(job_id), "energy")  # what `tuxai show --json` carries
    assert energy.gpu_util_mean_pct == 50.0 and energy.gpu_memory_peak_bytes == 30.0 * GIB
    assert loop.energies([job_id, job_id + 1]) == {job_id: loop.energy(job_id)}  # a page's jobs in two reads
    assert _gpu_use_rows(energy) == [("GPU use", "50 % mean, peak memory 30.0 GiB")]  # `tuxai show`'s line
    html = jobs_page([job_view(daemon.store.get(job_id), T0 + 5, None)], {job_id: energy}, T0 + 5, "", "", "")
    assert "<th>GPU util</th><th>peak memory</th>" in html and "<td>50 %</td><td>30.0 GiB</td>" in html
    daemon.store.forget([job_id])  # retention takes the summary with the job
    assert JobGpuUseStore(daemon.store).of([job_id]) == {}
