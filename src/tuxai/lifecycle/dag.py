"""A pipeline file → ``Pipeline``: named steps, each a job file's fields plus ``needs``, ``inputs``,
``outputs`` and ``code``; checked as a DAG (pure but for reading the file).

    name: digits
    steps:
      prepare: {command: python prepare.py, outputs: [data]}
      train:   {command: python train.py, gpus: 1, inputs: {data: prepare.data}, outputs: [model]}

An input ``NAME: STEP.OUTPUT`` (or a list item ``STEP.OUTPUT``, named by its output) makes STEP a need
of the step. The Python form is a module with a ``PIPELINE = {...}`` literal of the same shape, read
with ``ast.literal_eval``: the module is parsed, never run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tuxai.errors import UsageError
from tuxai.model.jobfile import FIELDS, spec_from_dict

_STEP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_HINT = "see docs/lifecycle.md for the pipeline file"
PIPELINE_FIELDS = ("needs", "inputs", "outputs", "code")
_NOT_A_STEP_FIELD = ("name", "after", "array", "session", "hold")  # the pipeline sets or refuses these


@dataclass(frozen=True)
class InputRef:
    """Input ``name`` of a step: output ``output`` of step ``step``."""

    name: str
    step: str
    output: str


@dataclass(frozen=True)
class Step:
    """One step: its job fields (a job file's), its needs, inputs, outputs and code paths."""

    name: str
    fields: Mapping[str, Any]
    needs: tuple[str, ...]
    inputs: tuple[InputRef, ...]
    outputs: tuple[str, ...]
    code: tuple[str, ...]


@dataclass(frozen=True)
class Pipeline:
    """A checked pipeline: ``steps`` in an order where each comes after what it needs."""

    name: str
    source: Path
    steps: tuple[Step, ...]

    @property
    def root(self) -> Path:
        """The directory of the pipeline file: a step's default workdir, where its paths are read from."""
        return self.source.parent

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        return next(s for s in self.steps if s.name == name)


def variable(name: str) -> str:
    """A step's input or output name as a variable's suffix: ``eval-a`` → ``EVAL_A``."""
    return name.upper().replace("-", "_")


def load_pipeline(path: Path) -> Pipeline:
    """Read and check the pipeline file ``path`` (``.py``: its ``PIPELINE`` literal; else YAML).

    Raises:
        UsageError: unreadable, not the shape, a bad step, a cycle, or a name that is no step or output.
    """
    path = path.expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"pipeline file {path} does not exist", hint="check the path")
    text = path.read_text()
    data = _python_literal(text, path) if path.suffix == ".py" else _yaml(text, path)
    return pipeline_from_dict(data, path)


def _yaml(text: str, path: Path) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {getattr(exc, 'problem', exc)}", hint=_HINT) from None


def _python_literal(text: str, path: Path) -> object:
    """The value of ``PIPELINE = <literal>`` in a Python module, without running it."""
    try:
        module = ast.parse(text, str(path))
    except SyntaxError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not Python: {exc.msg}", hint=_HINT) from None
    for node in module.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PIPELINE" for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                raise UsageError(
                    f"{path}:{node.lineno}: PIPELINE must be a literal (dicts, lists, strings, numbers)",
                    hint="the module is read, not run: no calls or names in PIPELINE",
                ) from None
    raise UsageError(f"{path} defines no PIPELINE = {{...}}", hint=_HINT)


def pipeline_from_dict(data: object, source: Path) -> Pipeline:
    """A pipeline's mapping → ``Pipeline`` (see the module's example).

    Raises:
        UsageError: one line naming the file and the step.
    """
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict) or not data["steps"]:
        raise UsageError(f"{source}: a pipeline is a mapping with steps: {{NAME: {{command: ...}}}}", hint=_HINT)
    unknown = sorted(str(k) for k in data if k not in ("name", "steps"))
    if unknown:
        raise UsageError(f"{source}: unknown field {', '.join(unknown)}", hint="a pipeline has name and steps")
    name = str(data.get("name") or source.stem)
    steps = [_step(str(key), value, source) for key, value in data["steps"].items()]
    _check_references(steps, source)
    return Pipeline(name, source, ordered(steps, source))


def _names(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and _STEP_NAME.match(i) for i in items):
        raise UsageError(f"{where} must be a name or a list of names, got {value!r}", hint=_HINT)
    return tuple(dict.fromkeys(items))


def _inputs(value: object, where: str) -> tuple[InputRef, ...]:
    if value is None:
        return ()
    pairs: list[tuple[object, object]]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):  # STEP.OUTPUT (named by its output), or NAME: STEP.OUTPUT
        pairs = [next(iter(v.items())) if isinstance(v, dict) and len(v) == 1 else (str(v).partition(".")[2], v)
                 for v in value]  # fmt: skip
    else:
        raise UsageError(f"{where} must map NAME: STEP.OUTPUT, got {value!r}", hint=_HINT)
    refs = []
    for name, ref in pairs:
        step, dot, output = str(ref).partition(".")
        if not (isinstance(name, str) and _STEP_NAME.match(name) and dot and _STEP_NAME.match(step)):
            raise UsageError(f"{where}: {name}: {ref!r} is not STEP.OUTPUT", hint=_HINT)
        if not _STEP_NAME.match(output):
            raise UsageError(f"{where}: {name}: {ref!r} is not STEP.OUTPUT", hint=_HINT)
        refs.append(InputRef(name, step, output))
    return tuple(refs)


def _step(name: str, value: object, source: Path) -> Step:
    where = f"{source}: step {name}"
    if not _STEP_NAME.match(name):
        raise UsageError(f"{where}: a step's name is letters, digits, - and _", hint=_HINT)
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a mapping of job fields", hint=_HINT)
    refused = sorted(k for k in value if k in _NOT_A_STEP_FIELD)
    if refused:
        raise UsageError(f"{where}: {', '.join(refused)} is set by the pipeline", hint="use needs: for the order")
    fields = {k: v for k, v in value.items() if k not in PIPELINE_FIELDS}
    unknown = sorted(str(k) for k in fields if k not in FIELDS)
    if unknown:
        raise UsageError(f"{where}: unknown field {', '.join(unknown)}", hint=f"job fields, or {PIPELINE_FIELDS}")
    spec_from_dict(fields, origin=where, slurm_time=True)  # each job field checked now, named by its step
    inputs = _inputs(value.get("inputs"), f"{where}: inputs")
    needs = _names(value.get("needs"), f"{where}: needs")
    needs = tuple(dict.fromkeys((*needs, *(i.step for i in inputs))))
    code = value.get("code") or []
    paths = [code] if isinstance(code, str) else code
    if not isinstance(paths, list) or not all(isinstance(c, str) and c for c in paths):
        raise UsageError(f"{where}: code must be a path or a list of paths, got {code!r}", hint=_HINT)
    return Step(name, fields, needs, inputs, _names(value.get("outputs"), f"{where}: outputs"), tuple(paths))


def _check_references(steps: list[Step], source: Path) -> None:
    by_name = {s.name: s for s in steps}
    for step in steps:
        for need in step.needs:
            if need not in by_name:
                raise UsageError(f"{source}: step {step.name} needs {need}, which is no step", hint=_HINT)
            if need == step.name:
                raise UsageError(f"{source}: step {step.name} needs itself", hint="remove it from its needs")
        for ref in step.inputs:
            if ref.output not in by_name[ref.step].outputs:
                declared = ", ".join(by_name[ref.step].outputs) or "none"
                raise UsageError(
                    f"{source}: step {step.name}: input {ref.name} is {ref.step}.{ref.output}, "
                    f"but step {ref.step} has no output {ref.output} (its outputs: {declared})",
                    hint="declare it under the step's outputs:",
                )


def ordered(steps: list[Step], source: Path) -> tuple[Step, ...]:
    """``steps`` with each after what it needs, the file's order kept where free (Kahn's algorithm).

    Raises:
        UsageError: a cycle, named step by step (``a → b → a``).
    """
    done: list[Step] = []
    placed: set[str] = set()
    left = list(steps)
    while left:
        ready = next((s for s in left if set(s.needs) <= placed), None)
        if ready is None:
            cycle = " → ".join(_cycle(left))
            raise UsageError(
                f"{source}: steps {cycle} form a cycle (each needs the next)", hint="a pipeline's needs: must not loop"
            )
        done.append(ready)
        placed.add(ready.name)
        left.remove(ready)
    return tuple(done)


def _cycle(left: list[Step]) -> list[str]:
    """One cycle among ``left`` (every one of which waits on another of them), as names."""
    by_name = {s.name: s for s in left}
    path = [left[0].name]
    while True:
        following = next(n for n in by_name[path[-1]].needs if n in by_name)
        if following in path:
            return [*path[path.index(following) :], following]
        path.append(following)


def depths(pipeline: Pipeline) -> dict[str, int]:
    """Each step's depth: 0 for a step that needs nothing, else one more than its deepest need."""
    found: dict[str, int] = {}
    for step in pipeline.steps:
        found[step.name] = 1 + max((found[n] for n in step.needs), default=-1)
    return found
