"""One real Ray cluster per test run (tests/ray/cluster.py), stopped at the end with no process left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ray.cluster import LocalRayCluster
from tuxai.cluster.ray_nodes import import_ray


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRayCluster]:
    """A head and two workers of 2 simulated GPUs each; this process joins it as a driver."""
    cluster = LocalRayCluster(Path(tmp_path_factory.mktemp("ray")))
    began = time.monotonic()
    try:
        cluster.start()
        print(f"\nRay cluster up in {time.monotonic() - began:.1f} s ({cluster.timings})")
        yield cluster
    finally:
        ray = import_ray()
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
    left = cluster.processes()
    assert not left, f"processes of the Ray cluster left running: {left}"
