"""Pipelines through the real CLI and daemon on the simulated 2-GPU box: a 4-step DAG (prepare → train
→ evaluate-a ∥ evaluate-b → report) of small Python steps that write files; cached re-runs; a code
change re-running train and what follows; a failure stopping its dependants and ``--resume``."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.daemon_helpers import DaemonProcess
from tests.e2e.test_doctor_cli import one_line_error

PIPELINE = """\
name: four
steps:
  prepare:
    command: {python} prepare.py
    outputs: [data]
  train:
    command: {python} train.py
    gpus: 1
    inputs: {{data: prepare.data}}
    outputs: [model]
  evaluate-a:
    command: {python} evaluate.py a
    code: [evaluate.py]
    inputs: {{model: train.model}}
    outputs: [score]
  evaluate-b:
    command: {python} evaluate_b.py
    inputs: {{model: train.model}}
    outputs: [score]
  report:
    command: {python} report.py
    inputs: [evaluate-a.score, {{b: evaluate-b.score}}]
    outputs: [report]
"""

SCRIPTS = {
    "prepare.py": "import os\nopen(os.environ['PIPELINE_OUTPUT_DATA'] + '/numbers.txt', 'w').write('1 2 3')\n",
    "train.py": (
        "import os\nnumbers = open(os.environ['PIPELINE_INPUT_DATA'] + '/numbers.txt').read().split()\n"
        "open(os.environ['PIPELINE_OUTPUT_MODEL'] + '/model.txt', 'w').write(str(sum(map(int, numbers))))\n"
    ),
    "evaluate.py": (
        "import os, sys, time\ntime.sleep(1.0)\n"
        "model = open(os.environ['PIPELINE_INPUT_MODEL'] + '/model.txt').read()\n"
        "open(os.environ['PIPELINE_OUTPUT_SCORE'] + '/score.txt', 'w').write(sys.argv[1] + model)\n"
    ),
    "evaluate_b.py": "import sys\nsys.argv.append('b')\nexec(open('evaluate.py').read())\n",
    "report.py": (
        "import os\nnames = ('PIPELINE_INPUT_SCORE', 'PIPELINE_INPUT_B')\n"
        "scores = [open(os.environ[v] + '/score.txt').read() for v in names]\n"
        "open(os.environ['PIPELINE_OUTPUT_REPORT'] + '/report.txt', 'w').write(' '.join(scores))\n"
    ),
}
# evaluate_b.py names its code by its command (python evaluate_b.py): it execs evaluate.py, which it does not hash;
# evaluate-a names evaluate.py under code:, so its key follows that file.


def write_project(where: Path, pipeline: str = PIPELINE, **scripts: str) -> Path:
    """The pipeline file and its steps' scripts in ``where``; the file."""
    where.mkdir(parents=True, exist_ok=True)
    for name, text in {**SCRIPTS, **scripts}.items():
        (where / name).write_text(text)
    path = where / "pipeline.yaml"
    path.write_text(pipeline.format(python=sys.executable))
    return path


def tuxai(home: Path, data: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """``tuxai ARGS`` as a user whose XDG data directory is ``data``; the result, its CPU time (user + system:
    the process's own, whatever the load of the machine) and its wall time, in seconds."""
    env = {**os.environ, "COLUMNS": "200", "TUXAI_HOME": str(home), "XDG_DATA_HOME": str(data)}
    env["TUXAI_MLFLOW"] = "off"  # untracked here, whether the extra is installed or not: tests/mlflow tracks
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tuxai", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    wall_s, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall_s


def shown(home: Path, data: Path, run: int) -> dict[str, Any]:
    """``tuxai pipeline show RUN --json``, steps by name."""
    done, *_ = tuxai(home, data, "pipeline", "show", str(run), "--json")
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    found["by_step"] = {s["name"]: s for s in found["steps"]}
    return found


def states(run: dict[str, Any]) -> dict[str, str]:
    """Each step's state in a shown run."""
    return {name: step["state"] for name, step in run["by_step"].items()}


def test_four_steps_run_in_dag_order_then_are_cached_then_rerun_from_the_changed_code(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    data, file = tmp_path / "data", write_project(tmp_path / "project")
    done, *_ = tuxai(daemon.home, data, "pipeline", "run", str(file))
    assert done.returncode == 0, done.stderr
    first = shown(daemon.home, data, 1)
    assert set(states(first).values()) == {"succeeded"}
    report = data / "tuxai/pipelines/runs/1/report/report/report.txt"
    assert report.read_text() == "a6 b6"
    jobs = {name: daemon.job(step["job"]) for name, step in first["by_step"].items()}
    a, b = jobs["evaluate-a"], jobs["evaluate-b"]
    assert a.started_at < b.ended_at and b.started_at < a.ended_at  # type: ignore[operator]  # in parallel
    assert jobs["train"].ended_at <= a.started_at and max(a.ended_at, b.ended_at) <= jobs["report"].started_at  # type: ignore[operator,type-var]
    assert len(jobs["train"].gpus) == 1 and first["by_step"]["train"]["gpu_hours"] > 0
    drawn = done.stdout
    assert "└ evaluate-a" in drawn and "← evaluate-a, evaluate-b" in drawn, drawn

    done, cpu_s, wall_s = tuxai(daemon.home, data, "pipeline", "run", str(file))
    assert done.returncode == 0, done.stderr
    second = shown(daemon.home, data, 2)
    assert set(states(second).values()) == {"cached"}
    assert {s["cached_from"] for s in second["steps"]} == {1}
    assert "cached from run 1" in done.stdout and "cached from run 1" in done.stderr
    assert (data / "tuxai/pipelines/runs/2/report/report/report.txt").read_text() == "a6 b6"
    print(f"all-cached run: {cpu_s:.3f} s of CPU (the whole CLI process, Python's start included), {wall_s:.3f} s wall")
    assert cpu_s < 1.0, (cpu_s, wall_s)

    (file.parent / "train.py").write_text(SCRIPTS["train.py"].replace("sum(map(int, numbers))", "10 * len(numbers)"))
    done, *_ = tuxai(daemon.home, data, "pipeline", "run", str(file))
    assert done.returncode == 0, done.stderr
    third = shown(daemon.home, data, 3)
    assert states(third) == {
        "prepare": "cached",
        "train": "succeeded",
        "evaluate-a": "succeeded",
        "evaluate-b": "succeeded",
        "report": "succeeded",
    }
    assert (data / "tuxai/pipelines/runs/3/report/report/report.txt").read_text() == "a30 b30"
    model = third["by_step"]["train"]["outputs"]["model"]
    lineage = third["lineage"][model]
    assert (lineage["run"], lineage["step"], lineage["job"]) == (3, "train", third["by_step"]["train"]["job"])
    assert lineage["inputs"] == {"data": first["by_step"]["prepare"]["outputs"]["data"]}
    assert lineage["code_rule"] == "command" and lineage["code_hash"] == third["by_step"]["train"]["code_hash"]


def test_a_failed_step_stops_its_dependants_and_resume_goes_on_from_it(daemon: DaemonProcess, tmp_path: Path) -> None:
    data = tmp_path / "data"
    file = write_project(tmp_path / "project", **{"evaluate_b.py": "raise SystemExit(3)\n"})
    done, *_ = tuxai(daemon.home, data, "pipeline", "run", str(file))
    assert done.returncode == 1, done.stderr
    assert "--resume" in done.stderr.splitlines()[-1]
    failed = shown(daemon.home, data, 1)
    assert states(failed) == {
        "prepare": "succeeded",
        "train": "succeeded",
        "evaluate-a": "succeeded",
        "evaluate-b": "failed",
        "report": "cancelled",
    }
    assert "dependency never satisfied" in failed["by_step"]["report"]["reason"]

    (file.parent / "evaluate_b.py").write_text(SCRIPTS["evaluate_b.py"])
    done, *_ = tuxai(daemon.home, data, "pipeline", "run", "--resume", str(file))
    assert done.returncode == 0, done.stderr
    resumed = shown(daemon.home, data, 1)  # the same run, gone on with
    assert set(states(resumed).values()) == {"succeeded"}
    for kept in ("prepare", "train", "evaluate-a"):
        assert resumed["by_step"][kept]["job"] == failed["by_step"][kept]["job"], kept
    for rerun in ("evaluate-b", "report"):
        assert resumed["by_step"][rerun]["job"] != failed["by_step"][rerun]["job"], rerun
    assert (data / "tuxai/pipelines/runs/1/report/report/report.txt").read_text() == "a6 b6"
    listed, *_ = tuxai(daemon.home, data, "pipeline", "ls")
    assert listed.returncode == 0 and "3 ran, 0 cached" not in listed.stdout and "5 ran, 0 cached" in listed.stdout


def test_a_cycle_and_a_missing_input_are_refused_in_one_line_naming_the_step(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"  # refused before any daemon is asked
    cycle = PIPELINE.replace("    outputs: [data]\n", "    outputs: [data]\n    needs: [report]\n", 1)
    done, *_ = tuxai(home, data, "pipeline", "run", str(write_project(tmp_path / "cycle", cycle)))
    line = one_line_error(done)
    assert "form a cycle" in line and "prepare → report → evaluate-a → train → prepare" in line, line

    missing = PIPELINE.replace("{{model: train.model}}", "{{model: train.weights}}", 1)
    done, *_ = tuxai(home, data, "pipeline", "run", str(write_project(tmp_path / "missing", missing)))
    line = one_line_error(done)
    assert "step evaluate-a: input model is train.weights, but step train has no output weights" in line, line

    unknown = PIPELINE.replace("inputs: [evaluate-a.score,", "needs: [publish]\n    inputs: [evaluate-a.score,")
    done, *_ = tuxai(home, data, "pipeline", "run", str(write_project(tmp_path / "unknown", unknown)))
    assert "step report needs publish, which is no step" in one_line_error(done)
    assert not (data / "tuxai/pipelines/runs").exists() or not any((data / "tuxai/pipelines/runs").iterdir())


def test_an_interrupted_run_is_picked_up_by_resume_without_submitting_again(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    data, file = tmp_path / "data", write_project(tmp_path / "project")
    env = {**os.environ, "TUXAI_HOME": str(daemon.home), "XDG_DATA_HOME": str(data)}
    record = data / "tuxai/pipelines/runs/1.json"
    argv = [sys.executable, "-m", "tuxai", "pipeline", "run", str(file)]
    with subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as watching:
        deadline = time.monotonic() + 30
        while not (
            record.exists() and all(s["job"] for s in json.loads(record.read_text() or "{}").get("steps", [{}]))
        ):
            if time.monotonic() > deadline or watching.poll() is not None:
                watching.kill()
                raise AssertionError(f"the steps were not all submitted: {watching.communicate()[1]}")
            time.sleep(0.05)
        watching.send_signal(signal.SIGINT)  # Ctrl-C: the CLI stops waiting, the jobs go on
        _, stderr = watching.communicate(timeout=30)
    assert watching.returncode == 130 and "the jobs go on" in stderr, stderr
    submitted = {s["name"]: s["job"] for s in json.loads(record.read_text())["steps"]}

    done, *_ = tuxai(daemon.home, data, "pipeline", "run", "--resume", str(file))
    assert done.returncode == 0, done.stderr
    resumed = shown(daemon.home, data, 1)
    assert set(states(resumed).values()) == {"succeeded"}
    assert {name: step["job"] for name, step in resumed["by_step"].items()} == submitted  # none submitted again
    assert (data / "tuxai/pipelines/runs/1/report/report/report.txt").read_text() == "a6 b6"


PYTHON_FORM = """\
import sys  # never run: tuxai reads the PIPELINE literal

PIPELINE = {{
    "name": "py",
    "steps": {{
        "prepare": {{"command": ["{python}", "prepare.py"], "outputs": ["data"]}},
        "train": {{"command": ["{python}", "train.py"], "inputs": {{"data": "prepare.data"}}, "outputs": ["model"]}},
    }},
}}
"""


def test_the_python_form_runs_and_a_dry_run_says_what_is_cached(daemon: DaemonProcess, tmp_path: Path) -> None:
    data, project = tmp_path / "data", tmp_path / "project"
    write_project(project)
    file = project / "pipeline.py"
    file.write_text(PYTHON_FORM.format(python=sys.executable))
    done, *_ = tuxai(daemon.home, data, "pipeline", "run", str(file))
    assert done.returncode == 0, done.stderr
    assert (data / "tuxai/pipelines/runs/1/train/model/model.txt").read_text() == "6"

    done, *_ = tuxai(daemon.home, data, "pipeline", "run", "--dry-run", str(file))
    assert done.returncode == 0 and done.stderr.splitlines() == [
        "prepare: cached from run 1 (job 1)",
        "train: cached from run 1 (job 2)",
    ]
    (project / "train.py").write_text(SCRIPTS["train.py"] + "# changed\n")
    done, *_ = tuxai(daemon.home, data, "pipeline", "run", "--dry-run", str(file))
    assert done.stderr.splitlines() == ["prepare: cached from run 1 (job 1)", "train: would run"], done.stderr
    assert sorted(p.name for p in (data / "tuxai/pipelines/runs").glob("*.json")) == [
        "1.json"
    ]  # a dry run records nothing
    assert len(daemon.client.jobs()) == 2  # and submits nothing

    drawn, *_ = tuxai(daemon.home, data, "pipeline", "show", "1")
    assert "run 1 · pipeline py · succeeded" in drawn.stdout
    assert "output model:" in drawn.stdout and "made by run 1 step train (job 2)" in drawn.stdout, drawn.stdout
