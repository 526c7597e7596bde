"""The simulator: trace parsing, the packing rules of the FGD method, time mode through decide."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.conftest import FIXTURES
from tuxai.errors import UsageError
from tuxai.sim.cluster import ClusterState, typical_pods
from tuxai.sim.openb import TIME_COLUMNS, OpenbNode, OpenbPod, parse_nodes, parse_pods
from tuxai.sim.packing import _choose, inflate, replay_packing
from tuxai.sim.report import parse_seeds
from tuxai.sim.timemode import draw_workload, replay_time

TRACES = FIXTURES / "traces"


def _nodes() -> tuple[OpenbNode, ...]:
    return parse_nodes((TRACES / "openb-nodes-sample.csv").read_text())


def _pods(name: str = "openb-pods-sample.csv", require: tuple[str, ...] = ()) -> tuple[OpenbPod, ...]:
    return parse_pods((TRACES / name).read_text(), name, require)


def _runtimes() -> list[float]:
    return [float(line) for line in (TRACES / "philly-runtime-sample.csv").read_text().split()[1:]]


def test_parse_the_samples() -> None:
    nodes = _nodes()
    assert len(nodes) == 31 and nodes[0].name == "openb-node-0000"
    assert nodes[0] == OpenbNode("openb-node-0000", 64000, 262144, 2, "P100")
    pods = _pods()
    assert len(pods) == 272
    assert pods[0] == OpenbPod("openb-pod-0000", 12000, 16384, 1, 1000, (), "LS")
    assert any(p.gpu_milli < 1000 for p in pods) and any(p.num_gpu == 0 for p in pods)


def test_resource_only_list_runs_packing_but_time_mode_says_what_it_lacks() -> None:
    pods = _pods("openb-pods-sample-resources-only.csv")
    result = replay_packing(_nodes(), pods, "best-fit", 42)
    assert 0 < result.allocated_gpu_share <= 1
    with pytest.raises(UsageError, match="lacks the column\\(s\\) gpu_spec, qos"):
        _pods("openb-pods-sample-resources-only.csv", require=TIME_COLUMNS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sn,cpu_milli,gpu\nn1,1,1\n", "lacks the column(s) memory_mib, model"),
        ("sn,cpu_milli,memory_mib,gpu,model\nn1,lots,1,1,T4\n", "line 2: cpu_milli must be a number, got 'lots'"),
        ("sn,cpu_milli,memory_mib,gpu,model\n", "has no nodes"),
    ],
)
def test_bad_node_lists(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_nodes(text, "nodes.csv")
    assert message in caught.value.message


def _tiny() -> tuple[OpenbNode, ...]:
    return (
        OpenbNode("a", 32000, 65536, 2, "T4"),
        OpenbNode("b", 32000, 65536, 2, "T4"),
        OpenbNode("c", 32000, 65536, 1, "V100M16"),
    )


def test_eligibility_follows_model_cpu_memory_and_gpu_room() -> None:
    nodes = _tiny()
    state = ClusterState(nodes, typical_pods((OpenbPod("t", 1000, 1, 1, 500),), nodes))
    assert list(state.eligible(OpenbPod("p", 1000, 1, 2, 1000))) == [True, True, False]
    assert list(state.eligible(OpenbPod("p", 1000, 1, 1, 1000, ("V100M16",)))) == [False, False, True]
    assert list(state.eligible(OpenbPod("p", 40000, 1, 1, 1000))) == [False, False, False]
    state.place(OpenbPod("x", 1000, 1, 1, 700), 0, [0])
    assert list(state.eligible(OpenbPod("p", 1000, 1, 2, 400))) == [False, True, False]
    assert state.allocated_milli == 700


def test_fragmentation_of_a_node() -> None:
    # One type: 1 GPU of 600 milli. A node with GPUs at 1000 and 500 free: the 500 is fragmented.
    nodes = (OpenbNode("a", 32000, 65536, 2, "T4"),)
    state = ClusterState(nodes, typical_pods((OpenbPod("t", 1000, 1, 1, 600),), nodes))
    assert state.frag[0] == 0
    state.place(OpenbPod("x", 1000, 1, 1, 500), 0, [1])
    assert state.frag[0] == 500
    # With too little CPU left for the type, all free milli-GPUs are fragmented.
    state.place(OpenbPod("y", 31000, 1, 0, 0), 0, [])
    assert state.frag[0] == 1500


def test_ties_go_to_the_smallest_name_for_fgd_and_to_the_used_node_for_tuxai() -> None:
    # Two T4 nodes, "b" already holds a 500 slice; a new 500 slice grows fragmentation on neither,
    # so FGD's scores tie and the artifact's rule sends it to "a"; best-fit and tuxai pack it onto "b".
    nodes = _tiny()[:2]
    pods = (OpenbPod("s", 1000, 1, 1, 500),) * 4
    expected = {"fgd": (0, [0]), "best-fit": (1, [0]), "tuxai": (1, [0])}
    for policy, choice in expected.items():
        state = ClusterState(nodes, typical_pods(pods, nodes))
        state.place(pods[0], 1, [0])
        assert _choose(state, pods[0], policy, random.Random(1)) == choice, policy


def test_inflate_reaches_130_percent_deterministically() -> None:
    pods = _pods()
    first, second = inflate(pods, 31 * 1000 * 4, 7), inflate(pods, 31 * 1000 * 4, 7)
    assert [p.name for p in first] == [p.name for p in second]
    total = sum(p.gpu_milli_total for p in first)
    assert total >= 1.3 * 31 * 4000 and total - max(p.gpu_milli_total for p in first) < 1.3 * 31 * 4000
    assert [p.name for p in inflate(pods, 31 * 1000 * 4, 8)] != [p.name for p in first]


def test_typical_pods_cover_95_percent() -> None:
    pods = _pods()
    types = typical_pods(pods, _nodes())
    assert abs(types.freq.sum() - 1) < 1e-9
    assert np.all(np.diff(types.freq) <= 1e-12)  # most common first


def test_packing_replay_curve() -> None:
    result = replay_packing(_nodes(), _pods(), "fgd", 42)
    assert len(result.curve) == 131 and result.curve[0] == 0
    assert all(b >= a - 1e-12 for a, b in zip(result.curve, result.curve[1:], strict=False))
    assert result.curve[50] == pytest.approx(0.5, abs=0.02)  # nothing fails while the cluster is half empty
    assert 0.5 < result.allocated_gpu_share <= 1.0
    arrived = result.curve.index(result.curve[-1])
    assert result.jobs > 0 and arrived <= 130


def test_unknown_policy() -> None:
    with pytest.raises(UsageError, match="no packing policy 'fifo'"):
        replay_packing(_nodes(), _pods(), "fifo", 42)


def test_time_mode_runs_every_job_through_decide() -> None:
    cluster, jobs = draw_workload(_nodes(), _pods(require=TIME_COLUMNS), _runtimes(), 120, 12, 0.9, 3)
    assert len(cluster) == 12 and len(jobs) == 120
    assert all(1.0 <= j.job.time_limit_s / max(j.runtime_s, 1e-9) <= 3.0 or j.runtime_s < 1 for j in jobs)  # type: ignore[operator]
    results = {p: replay_time(cluster, jobs, p, 3) for p in ("fifo", "backfill", "sjf", "tuxai")}
    for result in results.values():
        assert result.rejected == 0
        assert result.avg_jct_s >= sum(j.runtime_s for j in jobs) / len(jobs) - 1e-6
        assert result.avg_wait_s >= 0 and result.makespan_s > 0
    assert results["backfill"].avg_wait_s <= results["fifo"].avg_wait_s


def test_time_mode_parameters() -> None:
    with pytest.raises(UsageError, match="--nodes must be between 1 and 31"):
        draw_workload(_nodes(), _pods(), _runtimes(), 10, 99, 0.9, 1)
    with pytest.raises(UsageError, match="time-mode policy"):
        cluster, jobs = draw_workload(_nodes(), _pods(), _runtimes(), 10, 5, 0.9, 1)
        replay_time(cluster, jobs, "fgd", 1)


@pytest.mark.parametrize(
    ("seed", "seeds", "expected"),
    [(None, None, [42]), (7, None, [7]), (None, "42-44", [42, 43, 44]), (None, "1,5", [1, 5])],
)
def test_seeds(seed: int | None, seeds: str | None, expected: list[int]) -> None:
    assert parse_seeds(seed, seeds) == expected


def test_bad_seeds() -> None:
    with pytest.raises(UsageError):
        parse_seeds(1, "1-2")
    with pytest.raises(UsageError, match="must look like"):
        parse_seeds(None, "a-b")


def test_qos_becomes_priority_and_preemptibility() -> None:
    _, jobs = draw_workload(_nodes(), _pods(require=TIME_COLUMNS), _runtimes(), 200, 12, 0.9, 5)
    assert {j.job.priority for j in jobs} <= {0, 5, 10} and len({j.job.priority for j in jobs}) > 1
    assert all(j.job.preemptible == (j.job.priority == 0) for j in jobs if j.job.priority in (5, 10))
    assert any(j.job.preemptible for j in jobs)


def test_packing_without_gpus_is_a_clear_error() -> None:
    nodes = (OpenbNode("a", 32000, 65536, 0, "CPU"),)
    with pytest.raises(UsageError, match="packing needs GPUs"):
        replay_packing(nodes, (OpenbPod("p", 1000, 1, 1, 1000),), "best-fit", 1)
