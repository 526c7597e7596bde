"""A gang with an environment on the real Ray cluster (issue 15): the env travels as its lockfile's text,
each node builds it in its own cache (``TUXAI_ENV_CACHE`` of its ``ray start``) or reuses it there.

The lockfile names a wheel made on the spot (offline); the submitter's env path exists on no node."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.ray.cluster import LocalRayCluster
from tests.ray.test_ray_daemon import _logs, _submit, _until_ended, daemon  # noqa: F401 (the module's daemon)
from tests.wheels import make_wheel
from tuxai.daemon.core import Daemon
from tuxai.model.job import JobState

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

SCRIPT = "import sys, tiny; print('prefix', sys.prefix, 'tiny', tiny.VALUE, flush=True)"
GANG = {"nodes": 2, "gpus_per_node": 1, "launcher": "none"}
PREFIX = re.compile(r"^prefix (\S+) tiny 42$", re.M)


def _ranks(tuxai: Daemon, job_id: int) -> list[str]:
    """Each rank's log (rank 0's ``output.log``, then ``output.rank1.log``)."""
    job_dir = Path(tuxai.store.get(job_id).log_path).parent
    return [(job_dir / name).read_text() for name in ("output.log", "output.rank1.log")]


def _run(tuxai: Daemon, lock: str) -> tuple[list[str], float]:
    """Submit the gang with the env (its submitter's path is on no node), wait: the ranks' logs, the wall time."""
    began = time.monotonic()
    job_id = _submit(tuxai, script=SCRIPT, env="/submitter/envs/abc", env_lock=lock, **GANG)
    _until_ended(tuxai, job_id, 120)
    job = tuxai.store.get(job_id)
    assert job.state is JobState.SUCCEEDED, (job.reason, _logs(tuxai, job_id))
    return _ranks(tuxai, job_id), time.monotonic() - began


def test_E15_a_gang_with_an_env_builds_it_on_each_node_from_the_lockfile_then_reuses_it(
    daemon: Daemon,  # noqa: F811
    ray_cluster: LocalRayCluster,
    tmp_path: Path,
) -> None:
    wheel = make_wheel(tmp_path, "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    lock = f"{wheel}\n"
    caches = {node.ip: node.env_cache for node in ray_cluster.nodes}
    logs, cold = _run(daemon, lock)
    prefixes = []
    for log in logs:
        node = re.search(r"^node (\S+): building the job environment (\S+) ", log, re.M)
        assert node is not None, log  # the person sees the build, on which node
        found = PREFIX.search(log)
        assert found is not None, log
        assert Path(found[1]).parent == caches[node[1]] and found[1] == node[2], log  # built in its node's cache
        prefixes.append(found[1])
    assert len(set(prefixes)) == 2  # each node built its own

    again, warm = _run(daemon, lock)
    for log, prefix in zip(again, prefixes, strict=True):
        assert "building" not in log and f": reusing the job environment {prefix}" in log, log
        assert PREFIX.search(log)[1] == prefix  # type: ignore[index]
    print(f"2-node gang with an env: cold {cold:.1f} s, warm {warm:.1f} s (submit → ended)")
