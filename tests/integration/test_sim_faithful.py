"""The packing replay on the real openb trace lands on the FGD artifact's numbers, on all five pod lists.

The artifact's own means over seeds 42–51 at 100 % arrived (its
``analysis_allo_discrete.csv``; bench/sim-results.md has them beside ours) are
random, best-fit and FGD below. One seed per list and policy here — the
ten-seed table is ``python bench/sim.py --seeds 42-51`` —, so the tolerances
are about three times a seed's spread (standard deviation over seeds 42–51:
random 0.3, best-fit 0.15–0.25, FGD 0.1–0.2), not the 0.5-point bar of the
ten-seed means: random within 1.2 points, best-fit within 0.8 (multigpu30's
seed 42 is 0.73 below), FGD within 0.5; and the tuxai policy above the
artifact's FGD.
"""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tuxai.sim.openb import OpenbNode, parse_nodes, parse_pods
from tuxai.sim.packing import PACKING_POLICIES, replay_packing

TRACE = REPO / "traces" / "alibaba-gpu-v2023-openb"
ARTIFACT = {  # % of milli-GPU capacity allocated at 100 % arrived: random, best-fit, FGD
    "default": (86.3, 92.9, 95.2),
    "multigpu30": (86.6, 94.6, 96.4),
    "gpushare60": (82.8, 89.1, 91.3),
    "gpuspec20": (85.9, 88.5, 94.7),
    "cpu100": (87.4, 93.3, 95.2),
}
TOLERANCE = {"random": 1.2, "best-fit": 0.8, "fgd": 0.5}


@pytest.fixture(scope="module")
def nodes() -> tuple[OpenbNode, ...]:
    parsed = parse_nodes((TRACE / "openb_node_list_gpu_node.csv").read_text())
    assert len(parsed) == 1213 and sum(n.gpus for n in parsed) == 6212
    return parsed


@pytest.mark.parametrize("policy", PACKING_POLICIES)
@pytest.mark.parametrize("pod_list", sorted(ARTIFACT))
def test_seed_42_lands_on_the_artifacts_mean(nodes: tuple[OpenbNode, ...], pod_list: str, policy: str) -> None:
    pods = parse_pods((TRACE / f"openb_pod_list_{pod_list}.csv").read_text())
    result = replay_packing(nodes, pods, policy, 42, until_percent=100)  # arrivals past 100.5 % do not count
    share = result.allocated_gpu_share * 100
    random_fit, best_fit, fgd = ARTIFACT[pod_list]
    if policy == "tuxai":
        assert share > fgd, f"tuxai {share:.2f} % is not above the artifact's FGD {fgd} % on {pod_list}"
    else:
        artifact = {"random": random_fit, "best-fit": best_fit, "fgd": fgd}[policy]
        assert abs(share - artifact) <= TOLERANCE[policy], f"{policy} {share:.2f} % vs the artifact's {artifact} %"
