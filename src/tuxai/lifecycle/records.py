"""The user's side of pipelines: run records, the content-addressed artifact store, lineage.

    $XDG_DATA_HOME/tuxai/pipelines/           (~/.local/share/tuxai/pipelines, root's too)
      runs/7.json                             a run: its steps' states, jobs, hashes, cost
      runs/7/train/model/                     what step train of run 7 wrote (its PIPELINE_OUTPUT_MODEL)
      cache/<key>.json                        a step that succeeded: run, step, job, its outputs' hashes
      artifacts/<hash>/  artifacts/<hash>.json   an output's content (hard links) and its lineage

Not the daemon's store: a root daemon serves every user and holds jobs, not pipelines; a pipeline is
a client of the daemon like any user, and its records and artifacts are the user's own files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuxai.errors import UsageError
from tuxai.lifecycle.hashing import dir_hash, files_under

ENDED = ("succeeded", "cached", "failed", "cancelled", "timeout", "preempted")
DONE = ("succeeded", "cached")  # its outputs are there, hashed


def pipelines_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/tuxai/pipelines`` (``~/.local/share/tuxai/pipelines``), for root as for anyone."""
    env = os.environ if env is None else env
    data = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local/share")
    return Path(data) / "tuxai" / "pipelines"


@dataclass(frozen=True)
class StepRecord:
    """One step of a run: its state, job, hashes, and (once ended) its cost."""

    name: str
    state: str = "planned"  # planned, submitted, a job's state, or cached
    job: int | None = None
    key: str = ""  # the cache key, once its inputs' hashes are known
    code_rule: str = ""  # code, git or command (lifecycle.hashing)
    code_hash: str = ""
    env_hash: str = ""
    inputs: dict[str, str] = field(default_factory=dict)  # input name → content hash
    outputs: dict[str, str] = field(default_factory=dict)  # output name → content hash
    cached_from: int | None = None  # the run whose outputs it reuses
    reason: str = ""
    ran_s: float | None = None
    gpu_hours: float | None = None
    energy_kwh: float | None = None
    mlflow_run: str = ""  # the step's MLflow run (lifecycle.mlflow_runs), when tracked


@dataclass(frozen=True)
class RunRecord:
    """One run of a pipeline: its steps in order."""

    id: int
    pipeline: str
    source: str
    started_at: float
    ended_at: float | None
    steps: tuple[StepRecord, ...]

    def step(self, name: str) -> StepRecord:
        """The record of step ``name``."""
        return next(s for s in self.steps if s.name == name)

    def replace_step(self, record: StepRecord) -> RunRecord:
        """This run with ``record`` in place of the step of its name."""
        steps = tuple(record if s.name == record.name else s for s in self.steps)
        return dataclasses.replace(self, steps=steps)

    @property
    def state(self) -> str:
        """succeeded (every step done), failed (one did not end well), or running."""
        states = [s.state for s in self.steps]
        if all(s in DONE for s in states):
            return "succeeded"
        if all(s in ENDED for s in states):
            return "failed"
        return "running"


def _write_json(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(temporary, path)


def _link_tree(source: Path, target: Path, only_single: bool = False) -> None:
    """Copy the tree ``source`` to ``target`` as hard links (a copy across file systems). ``only_single``:
    a file with other links is copied (a step's output linking one of the user's files elsewhere: the
    store's files are made read-only, which must not reach that file)."""

    def link(src: str, dst: str) -> None:
        try:
            if only_single and os.stat(src, follow_symlinks=False).st_nlink > 1:
                raise OSError("linked elsewhere")
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=link)


class Records:
    """The runs, cache entries and artifacts under ``root`` (``pipelines_dir()``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("runs", "cache", "artifacts"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def new_run(self, pipeline: str, source: str, steps: tuple[str, ...], now: float) -> RunRecord:
        """A new run with the next free number (claimed with O_EXCL: two runs never share one)."""
        number = max((r for r in self._numbers()), default=0) + 1
        while True:
            try:
                os.close(os.open(self.root / "runs" / f"{number}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                break
            except FileExistsError:
                number += 1
        run = RunRecord(number, pipeline, source, now, None, tuple(StepRecord(s) for s in steps))
        self.save(run)
        return run

    def _numbers(self) -> list[int]:
        return sorted(int(p.stem) for p in (self.root / "runs").glob("*.json") if p.stem.isdigit())

    def save(self, run: RunRecord) -> None:
        """Write the run's record."""
        _write_json(self.root / "runs" / f"{run.id}.json", dataclasses.asdict(run))

    def load(self, run_id: int) -> RunRecord:
        """The run ``run_id``.

        Raises:
            UsageError: no such run (or its record unreadable).
        """
        path = self.root / "runs" / f"{run_id}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            steps = tuple(StepRecord(**s) for s in data.pop("steps"))
            return RunRecord(**data, steps=steps)
        except (OSError, ValueError, TypeError):
            raise UsageError(f"no pipeline run {run_id} in {self.root}", hint="see `tuxai pipeline ls`") from None

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        found = []
        for number in self._numbers():
            with contextlib.suppress(UsageError):
                found.append(self.load(number))
        return found

    def last_run(self, source: str) -> RunRecord | None:
        """The latest run of the pipeline file ``source``."""
        return next((r for r in reversed(self.runs()) if r.source == source), None)

    def output_dir(self, run_id: int, step: str, output: str) -> Path:
        """Where step ``step`` of run ``run_id`` writes its output ``output``."""
        return self.root / "runs" / str(run_id) / step / output

    def cached(self, key: str) -> dict[str, Any] | None:
        """The cache entry of ``key`` whose artifacts are all still there, or None."""
        try:
            entry: dict[str, Any] = json.loads((self.root / "cache" / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        if not all((self.root / "artifacts" / h).is_dir() for h in entry.get("outputs", {}).values()):
            return None
        return entry

    def remember(self, key: str, run_id: int, step: str, job: int | None, outputs: Mapping[str, str]) -> None:
        """Record that ``key`` made ``outputs`` (name → hash) in step ``step`` of run ``run_id``."""
        entry = {"run": run_id, "step": step, "job": job, "outputs": dict(outputs)}
        _write_json(self.root / "cache" / f"{key}.json", entry)

    def store(self, directory: Path, lineage: Mapping[str, object]) -> str:
        """Put ``directory`` into the artifact store (hard links), with its lineage beside it; its hash.
        Content already stored keeps the lineage of whoever made it first."""
        digest = dir_hash(directory)
        target = self.root / "artifacts" / digest
        if not target.is_dir():
            staging = Path(tempfile.mkdtemp(dir=self.root / "artifacts", prefix=".tmp-"))
            _link_tree(directory, staging / "tree", only_single=True)
            for name in files_under(staging / "tree"):  # stored content is not written in place (shared links)
                path = staging / "tree" / name
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode & ~0o222)
            try:
                os.rename(staging / "tree", target)
            except OSError:
                shutil.rmtree(staging / "tree", ignore_errors=True)  # another run stored it first
            staging.rmdir()
            _write_json(self.root / "artifacts" / f"{digest}.json", {"hash": digest, **lineage})
        return digest

    def materialize(self, digest: str, target: Path) -> None:
        """Make ``target`` hold the stored artifact ``digest`` (hard links; what was there goes)."""
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_tree(self.root / "artifacts" / digest, target)

    def lineage(self, digest: str) -> dict[str, Any]:
        """What made the artifact ``digest`` (its ``.json``), or {} when none is recorded."""
        try:
            data: dict[str, Any] = json.loads((self.root / "artifacts" / f"{digest}.json").read_text())
        except (OSError, ValueError):
            return {}
        return data
