"""A node's launcher forgets the telemetry it kept of a rank once the rank ended (review 11a): the
launcher outlives every rank of its node, so what its ``NodeSampler`` keeps per rank must not grow with
each rank ever run. ``NodeRunner`` runs here without a cluster (the object a node's actor holds)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tuxai.executor.attempt import Seen
from tuxai.executor.ray_node import NodeRunner
from tuxai.executor.rundir import Launch
from tuxai.telemetry.ranks import NodeSampler
from tuxai.telemetry.samplers import NoGpuSampler


@pytest.mark.skipif(os.geteuid() != 0, reason="a node's launcher runs a rank as its job's user: root here")
def test_F11a_the_launcher_forgets_a_rank_once_it_ended(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = f"while [ ! -e {gate} ]; do sleep 0.02; done"
    launch = Launch(7, 1, ("sh", "-c", script), {"PATH": "/usr/bin:/bin"}, "", str(tmp_path / "rank.log"),
                    user=(0, 0, ()))  # fmt: skip
    runner, name = (
        NodeRunner(str(tmp_path / "node"), address="127.0.0.1"),
        f"tuxai-test-{os.getpid()}-{time.monotonic_ns()}-r0",
    )
    sampler = NodeSampler(NoGpuSampler(), {})
    try:
        runner.start(name, launch)
        began = time.monotonic()
        while runner.sample([name], lambda: sampler) == [None]:  # until the rank has its process group
            assert time.monotonic() - began < 10, "the rank never ran"
            time.sleep(0.02)
        assert name in sampler._last
        gate.touch()
        while runner.observe(name).seen is not Seen.EXITED:
            assert time.monotonic() - began < 20, "the rank never ended"
            time.sleep(0.02)
        assert name not in sampler._last, "the ended rank's reading is kept forever"
    finally:
        gate.touch()
        runner.local.close()
