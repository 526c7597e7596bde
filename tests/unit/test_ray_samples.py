"""A telemetry step samples every gang's ranks with one call per node and one deadline for all the nodes
(executor.ray_samples, review 5): a hung node costs the step that deadline once, its ranks alone are left
out, and the nodes' launchers are looked up once. Ray here is a stand-in that records what it is asked
(the real cluster runs the same path in tests/ray/test_ray_daemon.py's telemetry test)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tuxai.executor.attempt import AttemptHandle
from tuxai.executor.ray import NODES, RayExecutor, group_name
from tuxai.executor.ray_samples import SAMPLE_S


class _Ref:
    def __init__(self, node: str, names: list[str]) -> None:
        self.node, self.value = node, [f"{n}@{node}" for n in names]


class _Ray:
    """What RayExecutor asks of Ray for telemetry; node ``hung`` never answers, node ``dead``'s actor fails."""

    class exceptions:
        RayError = RuntimeError

        class GetTimeoutError(RuntimeError):
            pass

    def __init__(self) -> None:
        self.lookups: list[str] = []
        self.calls: list[tuple[str, list[str]]] = []
        self.waited: list[float] = []  # every deadline spent on a node that did not answer

    def remote(self, **_: object) -> Any:
        return lambda cls: cls

    def get_actor(self, name: str, namespace: str) -> Any:
        self.lookups.append(name)
        node = name.rpartition("-")[2]

        def sample(names: list[str], sampler: object) -> _Ref:
            self.calls.append((node, names))
            return _Ref(node, names)

        return SimpleNamespace(sample=SimpleNamespace(remote=sample))

    def wait(self, refs: list[_Ref], num_returns: int, timeout: float) -> tuple[list[_Ref], list[_Ref]]:
        ready = [r for r in refs if r.node != "hung"]
        if len(ready) < len(refs):
            self.waited.append(timeout)
        return ready, [r for r in refs if r not in ready]

    def get(self, ref: _Ref, timeout: float | None = None) -> list[str]:
        if ref.node == "hung":
            self.waited.append(timeout or 0.0)
            raise self.exceptions.GetTimeoutError()
        if ref.node == "dead":
            raise self.exceptions.RayError("the actor died")
        return ref.value


def _gang(tmp_path: Path, job: int, nodes: list[str]) -> AttemptHandle:
    run_dir = tmp_path / str(job) / "run-1"
    run_dir.mkdir(parents=True)
    (run_dir / NODES).write_text(json.dumps({"nodes": nodes, "node_ids": nodes}))
    return AttemptHandle(str(run_dir))


def test_F5_one_call_per_node_one_deadline_for_all_and_a_hung_node_leaves_out_its_ranks_only(tmp_path: Path) -> None:
    ray = _Ray()
    executor = RayExecutor(lambda: ray, str(tmp_path), node_sampler=lambda: None)  # type: ignore[arg-type,return-value]
    gangs = [_gang(tmp_path, 1, ["a", "hung", "b"]), _gang(tmp_path, 2, ["b", "a", "hung"])]
    for _ in range(2):
        found = executor.samples(gangs)
        one, two = (group_name(g) for g in gangs)
        assert found == [[(0, f"{one}-r0@a"), (2, f"{one}-r2@b")], [(0, f"{two}-r0@b"), (1, f"{two}-r1@a")]]
    assert sorted(node for node, _ in ray.calls) == ["a", "a", "b", "b", "hung", "hung"]  # one call per node a step
    assert sum(ray.waited) <= 2 * SAMPLE_S  # the hung node cost each step one deadline, not one per rank
    assert sorted(ray.lookups) == [f"tuxai-launcher-{n}" for n in ("a", "b", "hung")]  # looked up once, kept
    dead = _gang(tmp_path, 3, ["dead"])
    assert executor.samples([dead]) == [[]] and executor.samples([dead]) == [[]]
    assert ray.lookups.count("tuxai-launcher-dead") == 2  # a launcher whose call failed is looked up again
