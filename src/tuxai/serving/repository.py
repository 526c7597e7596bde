"""The model repository: ``repo/<name>/<version>/model.onnx | model.pt | model.savedmodel/`` with an
optional ``repo/<name>/config.yaml``, versions loaded by policy and swapped without dropping requests.

    # repo/mlp/config.yaml
    max_batch_size: 64          # 0: the model takes no batch dimension
    max_queue_delay_ms: 0
    instances: 1
    version_policy: {latest: 1}  # or {specific: [1, 3]}, or all
    inputs:  [{name: x, datatype: FP32, shape: [-1, 256]}]   # needed for model.pt only
    outputs: [{name: y, datatype: FP32, shape: [-1, 10]}]
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from tuxai.errors import ModelLoadError, ModelNotFound, ModelNotReady, UsageError
from tuxai.serving.batcher import Batcher
from tuxai.serving.models import FILES, Model, TensorSpec, load_model
from tuxai.serving.protocol import DATATYPES

log = logging.getLogger("tuxai.serving")


@dataclass(frozen=True)
class ModelConfig:
    """One model's serving settings (``config.yaml`` over the server's flags)."""

    max_batch_size: int = 64
    max_queue_delay_ms: float = 0.0
    instances: int = 1
    max_queue: int = 1024
    threads: int = 0  # ONNX Runtime intra-op threads per instance (0: its default)
    drift_window: int = 1000  # rows per drift window, for a version with a drift-reference.json (serving.drift)
    latest: int | None = 1  # serve the newest N versions; None with ``specific``
    specific: tuple[int, ...] = ()
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()


def _specs(value: object, where: str) -> tuple[TensorSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UsageError(f"{where} must be a list of {{name, datatype, shape}}", hint="see docs/serving.md")
    specs = []
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or item.get("datatype") not in DATATYPES
            or not isinstance(item.get("shape"), list)
        ):
            raise UsageError(f"{where}: {item!r} needs name, datatype (FP32, INT64, …) and shape", hint="fix it")
        specs.append(TensorSpec(item["name"], item["datatype"], tuple(int(d) for d in item["shape"])))
    return tuple(specs)


def parse_config(text: str, origin: str, defaults: ModelConfig) -> ModelConfig:
    """``config.yaml`` → ``ModelConfig`` over ``defaults``.

    Raises:
        UsageError: not YAML, an unknown key, or a bad value (named).
    """
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{origin} is not valid YAML: {exc}", hint="fix it") from None
    known = {"max_batch_size", "max_queue_delay_ms", "instances", "max_queue", "threads", "version_policy", "inputs",
             "outputs", "drift_window"}  # fmt: skip
    if not isinstance(data, dict) or set(data) - known:
        extra = sorted(set(data) - known) if isinstance(data, dict) else data
        raise UsageError(f"{origin}: unknown settings {extra}", hint=f"known: {', '.join(sorted(known))}")
    config = defaults
    least = {"max_batch_size": 0, "threads": 0, "instances": 1, "max_queue": 1, "drift_window": 50}
    for key in least:
        if key in data:
            if not isinstance(data[key], int) or data[key] < least[key]:
                raise UsageError(f"{origin}: {key} must be a whole number ≥ {least[key]}, got {data[key]!r}", "fix it")
            config = replace(config, **{key: data[key]})
    if "max_queue_delay_ms" in data:
        if not isinstance(data["max_queue_delay_ms"], int | float) or data["max_queue_delay_ms"] < 0:
            raise UsageError(f"{origin}: max_queue_delay_ms must be ≥ 0", hint="fix it")
        config = replace(config, max_queue_delay_ms=float(data["max_queue_delay_ms"]))
    policy = data.get("version_policy")
    if policy == "all":
        config = replace(config, latest=None, specific=())
    elif isinstance(policy, dict) and isinstance(policy.get("latest"), int) and policy["latest"] >= 1:
        config = replace(config, latest=policy["latest"], specific=())
    elif isinstance(policy, dict) and isinstance(policy.get("specific"), list):
        config = replace(config, latest=None, specific=tuple(int(v) for v in policy["specific"]))
    elif policy is not None:
        raise UsageError(f"{origin}: version_policy must be all, {{latest: N}} or {{specific: [..]}}", hint="fix it")
    return replace(config, inputs=_specs(data.get("inputs"), f"{origin}: inputs"),
                   outputs=_specs(data.get("outputs"), f"{origin}: outputs"))  # fmt: skip


class VersionState(StrEnum):
    """A model version's state, as the KServe/Triton repository extension names them.

    LOADING → READY (its batcher runs) or UNAVAILABLE (the reason says why); READY → UNLOADING
    (draining what it has queued), then gone from the repository.
    """

    LOADING = "LOADING"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    UNLOADING = "UNLOADING"


READY = VersionState.READY
_HELD = (VersionState.READY, VersionState.LOADING)  # what a watch counts as loaded


@dataclass
class Version:
    """One version of one model: its state, model and batcher."""

    name: str
    number: int
    path: Path
    state: VersionState = VersionState.LOADING
    reason: str = ""
    model: Model | None = None
    batcher: Batcher | None = None
    config: ModelConfig = field(default_factory=ModelConfig)
    stamp: tuple[tuple[str, int, int], ...] = ()  # its files when loaded: a failed one is retried when they change


def _stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    """What a version's files are now: name, size and mtime of the path and its direct entries."""
    entries = [path, *sorted(path.iterdir())] if path.is_dir() else [path]
    out = []
    for entry in entries:
        try:
            info = entry.stat()
        except OSError:
            continue
        out.append((entry.name, info.st_size, info.st_mtime_ns))
    return tuple(out)


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers) or "none"


class Repository:
    """Every model the server knows, by name, and their versions."""

    def __init__(
        self, root: Path, defaults: ModelConfig, single: Path | None = None, only: str | None = None
    ) -> None:
        """``single``: one model file, no repository; ``only``: one model directory of ``root``."""
        self.root, self.defaults, self.single, self.only = root, defaults, single, only
        self.observe: Any = None
        self.versions: dict[str, dict[int, Version]] = {}
        self.unloaded: set[str] = set()  # unloaded on request: a watch leaves them out until loaded again
        self._locks: dict[str, asyncio.Lock] = {}

    def names(self) -> list[str]:
        """The models on disk."""
        if self.single is not None:
            return [self.single.stem]
        if self.only is not None:
            return [self.only]
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _on_disk(self, name: str) -> dict[int, Path]:
        if self.single is not None:
            return {1: self.single}
        base = self.root / name
        found = {}
        for child in base.iterdir() if base.is_dir() else []:
            if child.name.isdigit() and any((child / f).exists() for f in FILES):
                found[int(child.name)] = child
        return found

    def _config(self, name: str) -> ModelConfig:
        path = self.root / name / "config.yaml"
        if self.single is None and path.is_file():
            return parse_config(path.read_text(), str(path), self.defaults)
        return self.defaults

    def wanted(self, name: str, config: ModelConfig) -> dict[int, Path]:
        """The versions the policy serves."""
        disk = self._on_disk(name)
        if config.specific:
            return {v: p for v, p in disk.items() if v in config.specific}
        if config.latest is None:
            return disk
        return {v: disk[v] for v in sorted(disk)[-config.latest :]}

    async def load(self, name: str, why: str = "start") -> list[Version]:
        """Load (or reload) a model: new wanted versions load, then unwanted ones drain and go — unless
        none of the wanted ones could load: then a READY one keeps serving. A change of the versions
        served is logged in one line, ``model mlp: version 1 → 2 (watch: 2/ appeared)``, ``why`` first.

        Raises:
            UsageError: no such model, or its config.yaml is wrong.
        """
        if name not in self.names():
            raise UsageError(f"no model '{name}' in the repository", hint=f"models: {', '.join(self.names())}")
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            self.unloaded.discard(name)
            config = self._config(name)
            wanted = self.wanted(name, config)
            current = self.versions.setdefault(name, {})
            before = sorted(n for n, v in current.items() if v.state is VersionState.READY)
            changes = [f"{n}/ appeared" for n in sorted(set(wanted) - set(current))]
            changes += [f"{n}/ {'left the version policy' if v.path.exists() else 'was removed'}"
                        for n, v in sorted(current.items()) if n not in wanted]  # fmt: skip
            for number, path in sorted(wanted.items()):
                known = current.get(number)
                if known is not None and known.state is VersionState.READY:
                    continue
                version = Version(name, number, path, config=config, stamp=_stamp(path))
                current[number] = version
                await self._load_version(version)
            serving = any(current[n].state is VersionState.READY for n in wanted)
            for number in [n for n in current if n not in wanted]:
                if serving or current[number].state is not VersionState.READY:
                    await self._unload_version(current.pop(number))
            after = sorted(n for n, v in current.items() if v.state is VersionState.READY)
            if after != before and (before or why != "start"):
                reason = "; ".join([why, ", ".join(changes)] if changes else [why])
                log.info("model %s: version %s → %s (%s)", name, _numbers(before), _numbers(after), reason)
            if wanted and not serving and after:
                log.warning("model %s: version %s could not load; version %s keeps serving", name,
                            _numbers(sorted(wanted)), _numbers(after))  # fmt: skip
            return list(current.values())

    async def _load_version(self, version: Version) -> None:
        config = version.config
        try:
            model = await asyncio.to_thread(
                load_model, version.path, list(config.inputs), list(config.outputs), config.threads
            )
        except ModelLoadError as exc:
            version.state, version.reason = VersionState.UNAVAILABLE, str(exc)
            log.error("model %s version %s failed to load: %s", version.name, version.number, exc, exc_info=exc)
            return
        batching = config.max_batch_size if _batchable(model) else 0
        version.model = model
        version.config = replace(config, max_batch_size=batching)
        observe = self.observe

        def seen(size: int, waits: list[float]) -> None:
            if observe is not None:
                observe(version, size, waits)

        version.batcher = Batcher(
            model.run, batching or 1, config.max_queue_delay_ms, config.instances, config.max_queue, observe=seen
        )
        version.batcher.start()
        version.state = VersionState.READY

    async def _unload_version(self, version: Version) -> None:
        version.state = VersionState.UNLOADING
        if version.batcher is not None:
            await version.batcher.drain()  # in-flight and queued requests finish on the old version
            version.batcher.close()
        version.model, version.batcher = None, None

    async def unload(self, name: str, why: str = "unload request") -> None:
        """Drain and unload every version of a model (logged as a swap to none)."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            versions = self.versions.pop(name, {})
            self.unloaded.add(name)
            ready = sorted(n for n, v in versions.items() if v.state is VersionState.READY)
            for version in list(versions.values()):
                await self._unload_version(version)
            if ready:
                log.info("model %s: version %s → none (%s)", name, _numbers(ready), why)

    def resolve(self, name: str, number: int | None) -> Version:
        """The version to serve (the newest ready one when none is named).

        Raises:
            ModelNotFound: no such model or version loaded; ModelNotReady: none of it READY (each reason).
        """
        versions = self.versions.get(name)
        if not versions:
            raise ModelNotFound(name, None, sorted(self.versions))
        if number is None:
            newest = max(versions)
            if versions[newest].state is VersionState.READY:  # the common case, without sorting
                return versions[newest]
            ready = [v for n, v in sorted(versions.items()) if v.state is VersionState.READY]
            if not ready:
                raise ModelNotReady(name, None, [(v.number, v.state, v.reason) for v in versions.values()])
            return ready[-1]
        if number not in versions:
            raise ModelNotFound(name, number, sorted(versions))
        version = versions[number]
        if version.state is not VersionState.READY:
            raise ModelNotReady(name, number, [(number, version.state, version.reason)])
        return version

    def changed(self) -> list[str]:
        """Models a watch (re)loads: a new model, a wanted version not tried yet (a failed one counts as tried until
        its files change), or a version to let go (not wanted, and failed or replaced by a READY one)."""
        out = []
        for name in self.names():
            try:
                wanted = self.wanted(name, self._config(name))
            except UsageError:
                continue
            current = self.versions.get(name)
            if current is None:  # a model directory that appeared (or one unloaded on request: left out)
                if wanted and name not in self.unloaded:
                    out.append(name)
                continue
            fresh = [n for n, path in wanted.items() if not _tried(current.get(n), path)]
            serving = any(v.state is VersionState.READY for n, v in current.items() if n in wanted)
            stale = [n for n, v in current.items() if n not in wanted and (serving or v.state is not READY)]
            if fresh or stale:
                out.append(name)
        return out


def _tried(version: Version | None, path: Path) -> bool:
    """Whether a watch leaves this version be: held, or failed on the files that are still there."""
    if version is None:
        return False
    if version.state in _HELD:
        return True
    return version.state is VersionState.UNAVAILABLE and version.stamp == _stamp(path)


def _batchable(model: Model) -> bool:
    """A model takes batches when every input and output has a free first dimension."""
    return all(spec.shape and spec.shape[0] == -1 for spec in [*model.inputs, *model.outputs])
