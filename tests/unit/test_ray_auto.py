"""``tuxai up --ray auto`` (issue 15): the cluster RAY_ADDRESS names, else the head last started on this
machine, else one clear error. (The tier's ``tuxai up --ray auto`` test runs it on the real cluster.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.cluster.ray_nodes import resolve_address
from tuxai.errors import ClusterError


def test_E15_auto_takes_ray_address_first(tmp_path: Path) -> None:
    current = tmp_path / "ray_current_cluster"
    current.write_text("127.0.0.9:6379\n")
    assert resolve_address("auto", {"RAY_ADDRESS": "127.0.0.2:41000"}, current) == "127.0.0.2:41000"
    assert resolve_address("auto", {}, current) == "127.0.0.9:6379"  # the head `ray start --head` left here
    assert resolve_address("127.0.0.5:1", {"RAY_ADDRESS": "127.0.0.2:41000"}, current) == "127.0.0.5:1"


def test_E15_auto_with_no_cluster_anywhere_says_so(tmp_path: Path) -> None:
    with pytest.raises(ClusterError) as nothing:
        resolve_address("auto", {"RAY_ADDRESS": "auto"}, tmp_path / "none")
    assert nothing.value.message == (
        f"--ray auto found no Ray cluster: RAY_ADDRESS is not set and no head was started here ({tmp_path / 'none'})"
    )
