"""A cluster job's telemetry folded from its ranks' samples (daemon.cluster_telemetry, issue 15), and
`tuxai top`'s rows of its ranks (cli.top_layout): pure, no cluster."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tuxai.cli.top_layout import QueueRow, queue_lines, rank_line
from tuxai.daemon.cluster_telemetry import ClusterTelemetry
from tuxai.executor.attempt import AttemptHandle
from tuxai.model.job import JobRecord, JobSpec, JobState
from tuxai.model.wire_gpus import LiveRank, LiveRankGpu
from tuxai.telemetry.detection import DetectionConfig
from tuxai.telemetry.ranks import RankSample
from tuxai.telemetry.samples import GpuSample


def _job(job_id: int) -> JobRecord:
    return JobRecord(id=job_id, spec=JobSpec(command=("true",)), user="u", uid=1, gid=1, state=JobState.RUNNING,
                     submitted_at=0.0, run_dir=f"/jobs/{job_id}/run-1")  # fmt: skip


def _rank(node: str, at: float, cpu_s: float, power_w: float, util: float = 50.0) -> RankSample:
    gpu = GpuSample(0, f"GPU-{node}", at, util_pct=util, memory_used_bytes=100, power_w=power_w, power_limit_w=400.0)
    return RankSample(node, at, cpu_s, 2**20, (7,), (gpu,))


def test_E15_a_gangs_ranks_fold_into_one_jobs_usage_energy_and_gpu_use() -> None:
    readings = {1.0: [(0, _rank("a", 1.0, 2.0, 100.0)), (1, _rank("b", 1.0, 3.0, 300.0))],
                3.0: [(0, _rank("a", 3.0, 4.0, 100.0)), (1, _rank("b", 3.0, 5.0, 300.0))]}  # fmt: skip
    now = [1.0]

    def samples(handles: list[AttemptHandle]) -> list[list[tuple[int, object]]]:
        assert [Path(h) for h in handles] == [Path("/jobs/4/run-1")]
        return [list(readings[now[0]])]

    cluster = ClusterTelemetry(samples, watts_per_cpu=10.0)
    usage, energy, use = cluster.step(1.0, [_job(4)])
    assert usage[4].cpu_s == 5.0 and usage[4].memory_bytes == 2 * 2**20
    assert energy[4].gpu_j == 0.0  # the first look: nothing elapsed yet
    now[0] = 3.0
    usage, energy, use = cluster.step(3.0, [_job(4)])
    assert usage[4].cpu_s == 9.0
    assert energy[4].gpu_j == (100.0 + 300.0) * 2.0 and energy[4].cpu_j == 4.0 * 10.0 and energy[4].gpu_s == 4.0
    assert use[4].util_mean_pct == 50.0 and use[4].memory_peak_bytes == 100
    assert [(r.rank, r.node) for r in cluster.ranks[4]] == [(0, "a"), (1, "b")]
    cluster.step(4.0, [])  # the job ended: nothing kept of it
    assert cluster.ranks == {}


def test_E15_a_gang_whose_ranks_do_nothing_is_flagged_idle_then_hung_as_on_one_box(tmp_path: Path) -> None:
    job = replace(_job(5), spec=JobSpec(command=("true",), nodes=2), log_path=str(tmp_path / "output.log"))
    (tmp_path / "output.log").write_text("started\n")
    still = [(0, _rank("a", 0.0, 1.0, 100.0, util=0.0)), (1, _rank("b", 0.0, 1.0, 100.0, util=0.0))]
    detection = DetectionConfig(idle_after_s=5.0, hung_after_s=10.0)
    cluster = ClusterTelemetry(lambda handles: [still for _ in handles], 10.0, detection)
    flags: dict[float, set[str]] = {}
    for now in (0.0, 6.0, 11.0):
        cluster.step(now, [job])
        flags[now] = set(cluster.flags.get(5, set()))
    assert flags == {0.0: set(), 6.0: {"idle"}, 11.0: {"idle", "hung"}}
    (tmp_path / "output.rank1.log").write_text("rank 1 speaks\n")  # another node's log moved: progress
    cluster.step(12.0, [job])
    assert cluster.flags[5] == {"idle"}


def test_E15_top_lists_each_rank_under_its_job_and_keeps_to_its_height() -> None:
    from tuxai.api.views import job_view

    ranks = tuple(LiveRank(r, f"10.0.0.{3 + r}", 0.0, 1.0, 2**20, (LiveRankGpu("GPU-x", 1.0, 0, 9.0),)) for r in (0, 1))
    rows = [QueueRow(job_view(_job(i), 1.0), "", None, None, "", ranks) for i in (1, 2)]
    lines = [t.plain for t in queue_lines(rows, None, 120, 10)]
    assert [line for line in lines if "rank" in line] == [rank_line(r).plain for r in ranks] * 2
    short = [t.plain for t in queue_lines(rows, None, 120, 4)]  # header, job 1 and its ranks: job 2 does not fit
    assert len(short) == 4 and short[1].startswith("1 ") and short[-1].startswith("… 1 more jobs")


def test_F7_top_keeps_the_selected_gang_in_view_by_lines_and_counts_only_jobs_not_shown() -> None:
    from tuxai.api.views import job_view

    ranks = tuple(LiveRank(r, f"10.0.0.{3 + r}", 0.0, 1.0, 2**20, ()) for r in (0, 1))
    rows = [QueueRow(job_view(_job(i), 1.0), "", None, None, "", ranks) for i in range(1, 7)]
    lines = [t.plain for t in queue_lines(rows, 5, 120, 10)]
    jobs = [line.split()[0] for line in lines[1:] if not line.lstrip().startswith(("└", "…"))]
    assert len(lines) <= 10 and "5" in jobs
    assert lines[-1].startswith(f"… {6 - len(jobs)} more jobs")
    assert sum(line.lstrip().startswith("└") for line in lines) == 2 * len(jobs)  # whole gangs only
    everything = [t.plain for t in queue_lines(rows, 6, 120, 19)]  # 18 lines fit: no marker
    assert len(everything) == 19 and not everything[-1].startswith("…")


def test_F5_a_rank_missing_from_a_step_keeps_its_last_cpu_and_a_building_ranks_log_counts(tmp_path: Path) -> None:
    job = replace(_job(6), spec=JobSpec(command=("true",), nodes=2), log_path=str(tmp_path / "output.log"))
    both = [(0, _rank("a", 0.0, 5.0, 100.0, util=0.0)), (1, _rank("b", 0.0, 5.0, 100.0, util=0.0))]
    answers = {0.0: both, 4.0: both[:1], 8.0: both, 12.0: both[:1], 16.0: both[:1], 18.0: both[:1]}
    cluster = ClusterTelemetry(lambda handles: [answers[now] for _ in handles], 10.0,
                               DetectionConfig(idle_after_s=5.0, hung_after_s=10.0))  # fmt: skip
    cpu = {}
    for now in (0.0, 4.0, 8.0, 12.0):
        usage, _, _ = cluster.step(now, [job])
        cpu[now] = usage[6].cpu_s
    assert cpu == {0.0: 10.0, 4.0: 10.0, 8.0: 10.0, 12.0: 10.0}  # rank 1 missed a step: no drop, no rise
    assert cluster.flags[6] == {"idle", "hung"}  # nothing moved in 12 s
    for now, log in ((16.0, "building rank 1's env\n"), (18.0, "building rank 1's env\nstill\n")):
        (tmp_path / "output.rank1.log").write_text(log)  # rank 1 has no process group yet: no sample
        cluster.step(now, [job])
        assert "hung" not in cluster.flags[6], now  # its log grew: progress
