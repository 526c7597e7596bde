"""A pipeline file read and checked as a DAG: order, needs from inputs, cycles and unknown names in one
line naming the step, the Python form read without being run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.errors import UsageError
from tuxai.lifecycle.dag import InputRef, depths, load_pipeline, pipeline_from_dict, variable

SOURCE = Path("/p/pipeline.yaml")


def steps(**definitions: dict[str, object]) -> dict[str, object]:
    """A pipeline mapping of ``definitions`` (each step's command defaults to ``true``)."""
    return {"name": "t", "steps": {k: {"command": "true", **v} for k, v in definitions.items()}}


def refused(data: object) -> str:
    """The one-line message of the ``UsageError`` reading ``data`` raises."""
    with pytest.raises(UsageError) as caught:
        pipeline_from_dict(data, SOURCE)
    assert "\n" not in caught.value.message
    return caught.value.message


def test_steps_come_after_what_they_need_and_inputs_imply_needs() -> None:
    pipeline = pipeline_from_dict(
        steps(
            report={"inputs": ["a.score", {"b": "b.score"}]},
            a={"inputs": {"model": "train.model"}, "outputs": ["score"]},
            b={"needs": "train", "outputs": ["score"]},
            train={"needs": ["prepare"], "outputs": ["model"]},
            prepare={},
        ),
        SOURCE,
    )
    assert [s.name for s in pipeline.steps] == ["prepare", "train", "a", "b", "report"]
    report = pipeline.step("report")
    assert report.inputs == (InputRef("score", "a", "score"), InputRef("b", "b", "score"))
    assert report.needs == ("a", "b") and pipeline.step("a").needs == ("train",)
    assert depths(pipeline) == {"prepare": 0, "train": 1, "a": 2, "b": 2, "report": 3}
    assert pipeline.root == Path("/p") and pipeline.name == "t"


def test_a_cycle_is_named_step_by_step() -> None:
    message = refused(steps(a={"needs": "c"}, b={"needs": "a"}, c={"needs": "b"}, d={}))
    assert "steps a → c → b → a form a cycle" in message
    assert "step x needs itself" in refused(steps(x={"needs": "x"}))


def test_unknown_steps_outputs_and_fields_are_refused_naming_the_step() -> None:
    assert "step b needs nope, which is no step" in refused(steps(b={"needs": "nope"}))
    message = refused(steps(a={"outputs": ["x"]}, b={"inputs": {"y": "a.z"}}))
    assert "step b: input y is a.z, but step a has no output z (its outputs: x)" in message
    assert "step b: inputs: y: 'a' is not STEP.OUTPUT" in refused(steps(a={}, b={"inputs": {"y": "a"}}))
    assert "step a: unknown field gpu" in refused(steps(a={"gpu": 1}))
    assert "step a: after is set by the pipeline" in refused(steps(a={"after": "3"}))
    assert "step a: gpus must be" in refused(steps(a={"gpus": "many"}))  # the job file's own check, named
    assert "a step's name is letters" in refused(steps(**{"a b": {}}))
    assert "a pipeline is a mapping with steps" in refused({"steps": {}})


def test_the_python_form_is_read_without_running_it(tmp_path: Path) -> None:
    module = tmp_path / "pipeline.py"
    marker = tmp_path / "ran"
    module.write_text(
        f"open({str(marker)!r}, 'w')\n"
        "PIPELINE = {'steps': {'a': {'command': ['python', 'a.py'], 'outputs': ['x']}}}\n"
    )
    pipeline = load_pipeline(module)
    assert [s.name for s in pipeline.steps] == ["a"] and pipeline.name == "pipeline"
    assert not marker.exists()
    module.write_text("import os\nPIPELINE = {'steps': {'a': {'command': os.getcwd()}}}\n")
    with pytest.raises(UsageError, match="PIPELINE must be a literal"):
        load_pipeline(module)
    module.write_text("STEPS = {}\n")
    with pytest.raises(UsageError, match="defines no PIPELINE"):
        load_pipeline(module)


def test_names_become_variable_suffixes() -> None:
    assert variable("eval-a") == "EVAL_A" and variable("model") == "MODEL"
