"""A pipeline run: each step cached or submitted through the SDK as the user, with ``after`` edges so
the daemon orders them (independent steps run in parallel, a failed step's dependants are cancelled
as never satisfied); then waited for, its outputs stored and its cache entry written.

A step is looked up in the cache when its inputs' contents are known (its producers are done); a step
whose producer runs in this run runs too (no early cut-off yet: docs/lifecycle.md).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuxai.lifecycle.dag import Pipeline, Step, variable
from tuxai.lifecycle.hashing import code_files, env_hash, step_key, tree_hash
from tuxai.lifecycle.records import DONE, ENDED, Records, RunRecord, StepRecord
from tuxai.lifecycle.step_tracking import StepTracking
from tuxai.model.jobfile import spec_from_dict
from tuxai.model.wire import JobDetail, PublicJob

if TYPE_CHECKING:
    from tuxai.api.client import Client
    from tuxai.lifecycle.mlflow_runs import Tracker

Say = Callable[[str], None]


@dataclass(frozen=True)
class RunOptions:
    """``--resume`` (go on with the last run of this file), ``--dry-run`` (plan, submit nothing)."""

    resume: bool = False
    dry_run: bool = False
    poll_s: float = 0.1
    prepare_env: Callable[[str], str] | None = None  # a step's env: built as `tuxai submit` builds it
    tracker: Callable[[str], Tracker] | None = None  # experiment name → its MLflow runs, opened on first submit


class Runner:
    """Runs ``pipeline``, recording in ``records``, telling ``say``; ``connect`` gives the SDK client, asked
    for on the first submit (a run whose every step is cached never loads it: it stays under 1 s)."""

    def __init__(self, pipeline: Pipeline, records: Records, connect: Callable[[], Client], say: Say) -> None:
        self.pipeline, self.records, self.connect, self.say = pipeline, records, connect, say
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The SDK client, connected on first use."""
        if self._client is None:
            self._client = self.connect()
        return self._client

    def close(self) -> None:
        """Close the client if one was connected."""
        if self._client is not None:
            self._client.close()

    def run(self, options: RunOptions) -> RunRecord:
        """Plan every step, then (unless a dry run) wait for the submitted ones; the run's record."""
        self.options = options
        self._track = StepTracking(options.tracker, self.pipeline.name, self.say)
        run = self._start(options)
        for step in self.pipeline.steps:
            run = run.replace_step(self._plan(step, run))
            self._save(run)
        delay_s = options.poll_s
        while not options.dry_run and not all(s.state in ENDED for s in run.steps):
            seen, run = run, self._observe(run)
            # Quick while steps move, then backing off to 1 s: a long training step costs the daemon 1 request/s.
            delay_s = options.poll_s if run != seen else min(1.0, delay_s * 1.5)
            time.sleep(delay_s)
        if not options.dry_run:
            run = dataclasses.replace(run, ended_at=time.time())
            self._save(run)
        return run

    def _save(self, run: RunRecord) -> None:
        if not self.options.dry_run:
            self.records.save(run)

    def _start(self, options: RunOptions) -> RunRecord:
        names = tuple(s.name for s in self.pipeline.steps)
        source = str(self.pipeline.source)
        last = self.records.last_run(source) if options.resume else None
        if options.resume and last is None:
            self.say(f"no earlier run of {source} to resume: a new run")
        if last is not None:
            kept = {s.name: s for s in last.steps if self._keeps(s)}
            self.say(f"run {last.id} resumed: {', '.join(kept) or 'no step'} kept")
            return dataclasses.replace(last, ended_at=None, steps=tuple(kept.get(n, StepRecord(n)) for n in names))
        if options.dry_run:
            return RunRecord(0, self.pipeline.name, source, time.time(), None, tuple(StepRecord(n) for n in names))
        run = self.records.new_run(self.pipeline.name, source, names, time.time())
        self.say(f"run {run.id} of pipeline {self.pipeline.name}")
        return run

    def _keeps(self, record: StepRecord) -> bool:
        """Whether ``--resume`` keeps a step of the last run: done, or its job still queued or running, or
        ended well while no ``tuxai pipeline run`` watched it (recorded then, as if watched)."""
        if record.state in DONE:
            return True
        if record.job is None or record.state in ENDED:
            return False
        job = self.client.job(record.job)
        return not job.state.terminal or str(job.state) == "succeeded"

    def _workdir(self, step: Step) -> Path:
        return self.pipeline.root / str(step.fields.get("workdir") or ".")

    def _plan(self, step: Step, run: RunRecord) -> StepRecord:
        """A step's record once planned: kept (resume), cached, submitted, or (dry run) to run."""
        record = run.step(step.name)
        if record.state in DONE or record.job is not None:
            return record  # kept by --resume: done, or its job still in the queue
        workdir = self._workdir(step)
        words = [str(w) for w in spec_from_dict(dict(step.fields), f"step {step.name}", slurm_time=True).command]
        rule, files = code_files(step.code, words, workdir, f"{self.pipeline.source}: step {step.name}")
        record = dataclasses.replace(
            record,
            code_rule=rule,
            code_hash=tree_hash(workdir, files),
            env_hash=env_hash(str(step.fields.get("env") or ""), workdir),
        )
        inputs = {r.name: run.step(r.step).outputs.get(r.output, "") for r in step.inputs}
        if all(run.step(n).state in DONE for n in step.needs):
            key = step_key(step.fields, record.code_hash, record.env_hash, inputs)
            record = dataclasses.replace(record, key=key, inputs=inputs)
            entry = self.records.cached(key)
            if entry is not None:
                return self._reuse(step, run, record, entry)
        if self.options.dry_run:
            self.say(f"{step.name}: would run")
            return dataclasses.replace(record, state="planned")
        return self._submit(step, run, record)

    def _reuse(self, step: Step, run: RunRecord, record: StepRecord, entry: dict[str, Any]) -> StepRecord:
        """A cache hit: the outputs of run ``entry['run']`` linked into this run's directories."""
        outputs: dict[str, str] = dict(entry["outputs"])
        if not self.options.dry_run:
            for name, digest in outputs.items():
                self.records.materialize(digest, self.records.output_dir(run.id, step.name, name))
        origin = int(entry["run"])
        self.say(f"{step.name}: cached from run {origin}" + (f" (job {entry['job']})" if entry.get("job") else ""))
        return dataclasses.replace(record, state="cached", cached_from=origin, job=entry.get("job"), outputs=outputs)

    def _submit(self, step: Step, run: RunRecord, record: StepRecord) -> StepRecord:
        """Submit the step as a job of the user's, after its needs' jobs (``JOB:ok``)."""
        exports = dict(step.fields.get("export") or {})
        for ref in step.inputs:
            exports[f"PIPELINE_INPUT_{variable(ref.name)}"] = str(self.records.output_dir(run.id, ref.step, ref.output))
        for name in step.outputs:
            directory = self.records.output_dir(run.id, step.name, name)
            if directory.exists():
                shutil.rmtree(directory)  # what an earlier attempt of this run left (--resume)
            directory.mkdir(parents=True, exist_ok=True)
            exports[f"PIPELINE_OUTPUT_{variable(name)}"] = str(directory)
        exports |= {"PIPELINE_RUN": str(run.id), "PIPELINE_STEP": step.name}
        after = [f"{run.step(n).job}:ok" for n in step.needs if run.step(n).state not in DONE]
        fields = {
            **step.fields,
            "name": f"{self.pipeline.name}.{step.name}",
            "workdir": str(self._workdir(step)),
            "export": exports,
            "after": after,
        }
        env = str(step.fields.get("env") or "")
        if env and self.options.prepare_env is not None:
            local = self._workdir(step) / env
            fields["env"] = self.options.prepare_env(str(local) if local.exists() else env)
        spec = spec_from_dict(fields, f"step {step.name}", slurm_time=True)
        record = self._track.open(spec, record, self._workdir(step))
        spec = dataclasses.replace(spec, exports=self._track.exports(spec.exports, record))
        job = self.client.submit(spec)
        self._track.submitted(record, job)
        self.say(f"{step.name}: submitted as job {job}" + (f", after {', '.join(after)}" if after else ""))
        return dataclasses.replace(record, state="submitted", job=job)

    def _observe(self, run: RunRecord) -> RunRecord:
        """Each waiting step's job asked once; those that ended recorded (their needs first)."""
        for step in self.pipeline.steps:
            record = run.step(step.name)
            if record.state in ENDED or record.job is None:
                continue
            job = self.client.job(record.job)
            if job.state.terminal:
                run = run.replace_step(self._ended(step, run, record, job))
                self._save(run)
            elif str(job.state) != record.state:
                run = run.replace_step(dataclasses.replace(record, state=str(job.state)))
        return run

    def _ended(self, step: Step, run: RunRecord, record: StepRecord, job: PublicJob) -> StepRecord:
        """A step whose job ended: its cost, and if it succeeded its outputs stored and cached."""
        cost: dict[str, Any] = {"ran_s": job.ran_s}
        if isinstance(job, JobDetail) and job.energy is not None:
            cost |= {"gpu_hours": job.energy.gpu_hours, "energy_kwh": job.energy.total_kwh}
        else:
            cost["gpu_hours"] = len(job.gpus) * (job.ran_s or 0.0) / 3600
        self._track.close(record, job, self.client)
        if str(job.state) != "succeeded":
            self.say(f"{step.name}: {job.state} (job {job.id}): {job.reason}")
            return dataclasses.replace(record, state=str(job.state), reason=job.reason, **cost)
        inputs = {r.name: run.step(r.step).outputs.get(r.output, "") for r in step.inputs}
        key = step_key(step.fields, record.code_hash, record.env_hash, inputs)
        lineage = {
            "run": run.id,
            "pipeline": self.pipeline.name,
            "step": step.name,
            "job": job.id,
            "code_rule": record.code_rule,
            "code_hash": record.code_hash,
            "env_hash": record.env_hash,
            "inputs": inputs,
            "key": key,
            "made_at": time.time(),
        }
        outputs = {
            name: self.records.store(self.records.output_dir(run.id, step.name, name), {**lineage, "output": name})
            for name in step.outputs
        }
        self.records.remember(key, run.id, step.name, job.id, outputs)
        self.say(f"{step.name}: succeeded in {job.ran_s or 0:.1f} s (job {job.id})")
        return dataclasses.replace(record, state="succeeded", key=key, inputs=inputs, outputs=outputs, **cost)
