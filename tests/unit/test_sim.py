"""The simulator: trace parsing, the packing rules of the FGD method, time mode through decide."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tests.conftest import FIXTURES
from tuxai.errors import UsageError
from tuxai.sim.cluster import ClusterState, typical_pods
from tuxai.sim.openb import TIME_COLUMNS, OpenbNode, OpenbPod, parse_nodes, parse_pods
from tuxai.sim.packing import Chooser, _curve, inflate, replay_packing
from tuxai.sim.report import parse_seeds
from tuxai.sim.scores import FgdScores, normalized
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


def _chooser(policy: str, nodes: tuple[OpenbNode, ...], pods: tuple[OpenbPod, ...], rank: list[int]) -> Chooser:
    state = ClusterState(nodes, typical_pods(pods, nodes))
    return Chooser(policy, state, random.Random(1), np.array(rank))


def test_eligibility_follows_model_cpu_memory_and_gpu_room() -> None:
    nodes = _tiny()
    state = ClusterState(nodes, typical_pods((OpenbPod("t", 1000, 1, 1, 500),), nodes))
    assert list(state.eligible(OpenbPod("p", 1000, 1, 2, 1000))) == [0, 1]
    assert list(state.eligible(OpenbPod("p", 1000, 1, 1, 1000, ("V100M16",)))) == [2]
    assert list(state.eligible(OpenbPod("p", 40000, 1, 1, 1000))) == []
    assert list(state.eligible(OpenbPod("p", 1000, 70000, 1, 1000))) == []  # memory
    # The artifact's CPU-only pods carry no GPU model: a gpu_spec on one binds nothing.
    assert list(state.eligible(OpenbPod("p", 1000, 1, 0, 0, ("V100M16",)))) == [0, 1, 2]
    state.place(OpenbPod("x", 1000, 60000, 1, 700), 0, [0])
    assert list(state.eligible(OpenbPod("p", 1000, 1, 2, 400))) == [1]
    # The answer for this request was kept from before the placement and is brought up to date.
    assert list(state.eligible(OpenbPod("p", 1000, 1, 2, 1000))) == [1]
    assert list(state.eligible(OpenbPod("p", 1000, 6000, 1, 1000))) == [1, 2]  # node 0: 5,536 MiB left
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


def test_typical_pods_keep_the_artifacts_order_and_cut() -> None:
    # By count, ties by the larger (cpu, milli-GPUs, GPUs, model) tuple first; kept until 95 % are covered.
    pods = (
        (OpenbPod("a", 1000, 1, 1, 1000),) * 10
        + (OpenbPod("b", 2000, 1, 1, 500),) * 5
        + (OpenbPod("c", 3000, 1, 0, 0, ("T4",)),) * 5
        + (OpenbPod("d", 500, 1, 1, 1000),)
    )
    types = typical_pods(pods, _tiny())
    assert list(types.cpu) == [1000, 3000, 2000] and list(types.weight) == [10, 5, 5]
    assert types.model_ok.all()  # the CPU-only pod's model is dropped, as the artifact drops it
    assert abs(types.freq.sum() - 1) < 1e-12


def test_fgd_scores_exactly_50_when_fragmentation_does_not_move() -> None:
    # A CPU-only pod on a node whose GPUs are all taken changes no fragmentation: 100 × sigmoid(0) = 50.
    nodes = _tiny()
    state = ClusterState(nodes, typical_pods((OpenbPod("t", 1000, 1, 1, 300), OpenbPod("u", 7000, 1, 1, 1000)), nodes))
    state.place(OpenbPod("x", 1000, 1, 1, 1000), 2, [0])
    assert FgdScores(state)(OpenbPod("p", 1000, 1, 0, 0))[2, 0] == 50


def test_ties_follow_the_seeded_node_order() -> None:
    # Two empty T4 nodes score the same for FGD; the artifact names node i "{perm[i]:04d}-name" and the
    # smallest name wins, so the rank decides, not the node's own name.
    nodes = _tiny()[:2]
    pods = (OpenbPod("s", 1000, 1, 1, 500),) * 4
    assert _chooser("fgd", nodes, pods, [0, 1]).choose(pods[0]) == (0, [0])
    assert _chooser("fgd", nodes, pods, [1, 0]).choose(pods[0]) == (1, [0])


def test_best_fit_takes_the_tightest_node_and_gpu() -> None:
    nodes = _tiny()[:2]
    pods = (OpenbPod("s", 1000, 1, 1, 500),) * 4
    chooser = _chooser("best-fit", nodes, pods, [0, 1])
    chooser.state.place(OpenbPod("x", 1000, 1, 1, 300), 1, [1])
    assert chooser.choose(pods[0]) == (1, [1])


def test_best_fit_normalisation_is_the_plugins() -> None:
    # NormalizeScore: (s − lo) × 100 ÷ (hi − lo) in integers over the scored nodes, all 0 when they agree.
    assert list(normalized(np.array([90.0, 95.0, 100.0]))) == [0, 50, 100]
    assert list(normalized(np.array([95.0]))) == [0]
    assert list(normalized(np.array([97.0, 98.0, 99.0]))) == [0, 50, 100]
    assert list(normalized(np.array([0.0, 1.0, 100.0]))) == [0, 1, 100]  # never two scores into one


def test_arrivals_are_the_shuffled_list_then_copies_up_to_130_percent() -> None:
    pods = _pods()
    capacity = sum(p.gpu_milli_total for p in pods)  # the list asks 100 % of it
    first, second = inflate(pods, capacity, random.Random(7)), inflate(pods, capacity, random.Random(7))
    assert [p.name for p in first] == [p.name for p in second]
    assert sorted(p.name for p in first[: len(pods)]) == sorted(p.name for p in pods)  # every pod once, first
    total = sum(p.gpu_milli_total for p in first)
    assert total <= 1.3 * capacity + 7000  # the artifact stops on the next copy's per-GPU request
    assert total + 1000 > 1.3 * capacity
    assert [p.name for p in inflate(pods, capacity, random.Random(8))] != [p.name for p in first]
    # A list above 130 % loses random pods instead.
    pruned = inflate(pods, capacity // 2, random.Random(7))
    assert len(pruned) < len(pods) and sum(p.gpu_milli_total for p in pruned) <= 1.3 * (capacity // 2)


def test_packing_replay_curve() -> None:
    result = replay_packing(_nodes(), _pods(), "fgd", 42)
    assert len(result.curve) == 131 and result.curve[0] < 0.01
    assert all(b >= a - 1e-12 for a, b in zip(result.curve, result.curve[1:], strict=False))
    assert result.curve[50] == pytest.approx(0.5, abs=0.02)  # nothing fails while the cluster is half empty
    assert 0.5 < result.allocated_gpu_share <= 1.0
    assert 0 < result.jobs <= len(_pods())  # the samples ask more than 130 % of the sampled nodes: pruned


def test_a_replay_may_stop_at_the_100_percent_point() -> None:
    whole, cut = (
        replay_packing(_nodes(), _pods(), "fgd", 42),
        replay_packing(_nodes(), _pods(), "fgd", 42, until_percent=100),
    )
    assert cut.curve[100] == whole.curve[100] and cut.jobs < whole.jobs
    assert cut.curve[130] == cut.curve[101]


def test_the_reported_point_is_the_mean_over_arrivals_that_round_to_it() -> None:
    # The artifact's merge script: arrived share rounded to a whole percent, allocation averaged over those.
    arrived = np.array([0.994, 0.996, 1.0, 1.004, 1.006])
    allocated = np.array([0.90, 0.91, 0.92, 0.93, 0.99])
    curve = _curve(arrived, allocated)
    assert curve[100] == pytest.approx((0.91 + 0.92 + 0.93) / 3)
    assert curve[99] == pytest.approx(0.90) and curve[101] == pytest.approx(0.99)
    assert curve[98] == pytest.approx(0.90)  # no arrival rounds to 98: the neighbours within one percent


def test_tuxai_keeps_model_nodes_for_the_pods_that_need_them() -> None:
    # Some typical pods can only use the T4 node. Half a GPU on either node moves FGD's fragmentation by
    # less than a point (both score 50): FGD takes the lower rank, the T4 node; tuxai leaves it to them.
    nodes = (OpenbNode("a", 64000, 65536, 2, "T4"), OpenbNode("b", 64000, 65536, 2, "G2"))
    pods = (
        (OpenbPod("any", 1000, 1, 1, 500),) * 45
        + (OpenbPod("t4", 1000, 1, 1, 100, ("T4",)),) * 3
        + (OpenbPod("big", 2000, 1, 1, 1000),) * 2
    )
    assert _chooser("fgd", nodes, pods, [0, 1]).choose(pods[0]) == (0, [0])
    assert _chooser("tuxai", nodes, pods, [0, 1]).choose(pods[0]) == (1, [0])


def test_tuxai_sends_cpu_hungry_pods_where_cpu_strands_no_gpu() -> None:
    # Typical GPU pods ask 8 cores per GPU on average (4 and 12). A 12-core CPU-only pod leaves the 24-core
    # node 12 cores: every typical pod still fits one GPU (FGD scores 50 on both nodes), but its two GPUs
    # can be fed only 1.5 GPUs' worth of CPU; on the 64-core node nothing is stranded.
    nodes = (OpenbNode("small", 24000, 65536, 2, "T4"), OpenbNode("big", 64000, 65536, 2, "T4"))
    pods = (
        (OpenbPod("g", 4000, 1, 1, 1000),) * 5
        + (OpenbPod("h", 12000, 1, 1, 1000),) * 5
        + (OpenbPod("cpu", 12000, 1, 0, 0),)
    )
    assert _chooser("fgd", nodes, pods, [0, 1]).choose(pods[-1]) == (0, [])
    assert _chooser("tuxai", nodes, pods, [0, 1]).choose(pods[-1]) == (1, [])


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
