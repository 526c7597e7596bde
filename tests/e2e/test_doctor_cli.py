"""`tuxai doctor` as a user runs it: a real process, its output and its exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import FIXTURES, REPO
from tuxai.doctor.report import json_schema

EXAMPLES = REPO / "examples" / "inventories"


def tuxai(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child process, with a wide terminal so tables are not folded."""
    full_env = {k: v for k, v in os.environ.items() if k != "TUXAI_INVENTORY"}
    full_env.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "tuxai", *args], capture_output=True, text=True, env=full_env, timeout=120, check=False
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """A usage error: exit status 2 and exactly one line on stderr, which is returned."""
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


def test_doctor_on_this_machine_exits_0() -> None:
    done = tuxai("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "host · live" in done.stdout
    assert "NUMA nodes" in done.stdout and "frameworks" in done.stdout and "torch" in done.stdout
    assert "doctor: " in done.stdout and "0 error" in done.stdout


def test_json_validates_against_the_documented_schema() -> None:
    done = tuxai("doctor", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, json_schema())
    assert document["schema_version"] == 1
    assert len(document["cpu"]["online_cpus"]) == os.cpu_count()
    assert {f["name"] for f in document["frameworks"]} == {"torch", "tensorflow", "jax", "onnxruntime"}


def test_schema_rejects_a_broken_document() -> None:
    document = json.loads(tuxai("doctor", "--json", "--no-frameworks").stdout)
    document["findings"].append({"id": "x", "severity": "fatal", "message": "", "remedy": "", "subject": ""})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json_schema())


def test_no_frameworks_skips_the_probes() -> None:
    document = json.loads(tuxai("doctor", "--json", "--no-frameworks").stdout)
    assert document["frameworks"] == []


def test_dgx_inventory_shows_gpus_nvlink_and_mig() -> None:
    done = tuxai("doctor", "--inventory", str(EXAMPLES / "dgx-a100.yaml"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("A100-SXM4-80GB") >= 8
    assert "topology (GPU ↔ GPU)" in out and out.count("NV12") == 56
    assert "MIG instances" in out and out.count("1g.10gb") == 7
    document = json.loads(tuxai("doctor", "--json", "--inventory", str(EXAMPLES / "dgx-a100.yaml")).stdout)
    jsonschema.validate(document, json_schema())
    assert len(document["gpus"]) == 8 and len(document["gpus"][0]["mig_devices"]) == 7
    assert document["links"][0][1] == {"label": "NV12", "kind": "NV", "nvlinks": 12, "hops": None, "weight": None}


def test_inventory_from_the_environment() -> None:
    done = tuxai("doctor", "--json", env={"TUXAI_INVENTORY": str(EXAMPLES / "mi250x-node.yaml")})
    document = json.loads(done.stdout)
    assert len(document["gpus"]) == 8 and document["gpus"][0]["vendor"] == "amd"


def test_every_example_inventory_validates() -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        done = tuxai("doctor", "--json", "--inventory", str(path))
        assert done.returncode == 0, f"{path.name}: {done.stderr}"
        jsonschema.validate(json.loads(done.stdout), json_schema())


def test_replay_of_a_gaudi_box_exits_1_on_ecc_errors(tmp_path: Path) -> None:
    (tmp_path / "hl-smi.txt").write_text((FIXTURES / "hl-smi/gaudi2-hl225-x8-drv1.21.1.hl-smi-table.txt").read_text())
    done = tuxai("doctor", "--replay", str(tmp_path))
    assert done.returncode == 1
    assert "gpu.ecc_uncorrectable" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_truncated_capture_in_a_replay_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    text = (FIXTURES / "nvidia-smi-xml/tesla-t4-drv515.105.01.xml").read_text()
    (tmp_path / "nvidia-smi-q-x.xml").write_text(text[:3000])
    done = tuxai("doctor", "--replay", str(tmp_path), "--json")
    assert done.returncode == 1
    document = json.loads(done.stdout)
    jsonschema.validate(document, json_schema())
    (finding,) = [f for f in document["findings"] if f["id"] == "probe.tool_output"]
    assert finding["severity"] == "error" and finding["message"].startswith("nvidia-smi -q -x:")


def test_record_then_replay_round_trip(tmp_path: Path) -> None:
    recorded = tuxai("doctor", "--json", "--record", str(tmp_path / "box"))
    replayed = tuxai("doctor", "--json", "--replay", str(tmp_path / "box"))
    assert recorded.returncode == replayed.returncode == 0
    first, second = json.loads(recorded.stdout), json.loads(replayed.stdout)
    first.pop("source"), second.pop("source")
    assert first == second


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("doctor", "--inventory", "/nonexistent.yaml"), "cannot read inventory file /nonexistent.yaml"),
        (("doctor", "--replay", "/nonexistent-dir"), "no recording folder at /nonexistent-dir"),
        (("doctor", "--replay", "/tmp", "--inventory", "x.yaml"), "--inventory and --replay cannot be used together"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    done = tuxai(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:")


def test_malformed_inventory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus:\n  - model: NVIDIA H100\n    count: -3\n")
    done = tuxai("doctor", "--inventory", str(bad))
    line = one_line_error(done)
    assert "gpus[0].count must be an integer ≥ 1, got -3" in line


def test_unknown_flag_exits_2() -> None:
    done = tuxai("doctor", "--frobnicate")
    assert done.returncode == 2
    assert "No such option" in done.stderr and "Traceback" not in done.stderr


def test_debug_shows_the_traceback() -> None:
    done = tuxai("doctor", "--inventory", "/nonexistent.yaml", "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_version() -> None:
    done = tuxai("--version")
    assert done.returncode == 0 and done.stdout.startswith("tuxai ")


def test_record_onto_a_full_disk_is_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    folder.mkdir()
    (folder / "host-facts.json").symlink_to("/dev/full")  # every write to it fails with ENOSPC
    done = tuxai("doctor", "--record", str(folder), "--no-frameworks")
    line = one_line_error(done)
    assert "No space left on device" in line and "host-facts.json" in line


def test_bad_config_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("probe_timeout: soon\n")
    done = tuxai("doctor", env={"TUXAI_CONFIG": str(config)})
    line = one_line_error(done)
    assert f"{config}: probe_timeout must be a duration above 0" in line and "'soon'" in line


TRACES = FIXTURES / "traces"


def sim(*args: str, pods: str = "openb-pods-sample.csv") -> subprocess.CompletedProcess[str]:
    """`tuxai sim` on the trace samples."""
    return tuxai(
        "sim",
        "--jobs",
        str(TRACES / pods),
        "--cluster",
        str(TRACES / "openb-nodes-sample.csv"),
        "--runtimes",
        str(TRACES / "philly-runtime-sample.csv"),
        *args,
    )


def test_sim_packing_json_and_plot(tmp_path: Path) -> None:
    plot = tmp_path / "curves.png"
    done = tuxai(
        "sim",
        "--format",
        "openb",
        "--jobs",
        str(TRACES / "openb-pods-sample.csv"),
        "--cluster",
        str(TRACES / "openb-nodes-sample.csv"),
        "--mode",
        "packing",
        "--policy",
        "random,best-fit,fgd,tuxai",
        "--seeds",
        "42-43",
        "--json",
        "--plot",
        str(plot),
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["policy"] for r in rows] == ["random", "best-fit", "fgd", "tuxai"]
    for row in rows:
        assert row["mode"] == "packing" and row["seeds"] == [42, 43] and row["jobs"] > 0
        assert 0 < row["allocated_gpu_share"] <= 1 and len(row["curve"]) == 131
        assert row["unallocated_gpus"] >= 0 and "std" in row["spread"]["allocated_gpu_share"]
    assert plot.stat().st_size > 10_000


def test_sim_time_mode_table() -> None:
    done = sim(
        "--mode",
        "time",
        "--policy",
        "fifo,backfill,tuxai",
        "--count",
        "150",
        "--nodes",
        "12",
        "--load",
        "0.9",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    for row in rows:
        for key in ("policy", "mode", "jobs", "avg_jct_s", "p95_jct_s", "avg_wait_s", "p95_wait_s", "makespan_s"):
            assert key in row
        assert row["jobs"] == 150 and isinstance(row["p95_wait_by_gpus_s"], dict)
    table = sim("--mode", "time", "--policy", "backfill", "--count", "50", "--nodes", "8")
    assert table.returncode == 0 and "avg JCT" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--mode", "packing", "--policy", "fifo"), "policy fifo is not a packing-mode policy"),
        (("--mode", "sideways"), "--mode must be time or packing"),
        (("--format", "philly"), "unknown trace format 'philly'"),
        (("--seeds", "x-y"), "--seeds must look like 42-51"),
    ],
)
def test_sim_usage_errors(args: tuple[str, ...], message: str) -> None:
    done = sim(*args)
    line = one_line_error(done)
    assert message in line


def test_sim_time_mode_on_a_resource_only_list_names_the_missing_columns() -> None:
    done = sim("--mode", "time", "--policy", "fifo", pods="openb-pods-sample-resources-only.csv")
    assert done.returncode == 2 and "lacks the column(s) gpu_spec, qos" in done.stderr


def test_sim_time_mode_needs_runtimes() -> None:
    done = tuxai(
        "sim",
        "--jobs",
        str(TRACES / "openb-pods-sample.csv"),
        "--cluster",
        str(TRACES / "openb-nodes-sample.csv"),
        "--mode",
        "time",
        "--policy",
        "fifo",
    )
    assert done.returncode == 2 and "time mode needs --runtimes FILE" in done.stderr


def test_sim_missing_file() -> None:
    done = tuxai("sim", "--jobs", "/nope.csv", "--cluster", str(TRACES / "openb-nodes-sample.csv"))
    assert done.returncode == 2 and "cannot read the pod list /nope.csv" in done.stderr


def test_errors_stay_on_one_line_in_a_narrow_terminal(tmp_path: Path) -> None:
    bad = tmp_path / "scheduler.yaml"
    bad.write_text("colour: blue\n")
    done = tuxai(
        "sim",
        "--jobs",
        str(TRACES / "openb-pods-sample.csv"),
        "--cluster",
        str(TRACES / "openb-nodes-sample.csv"),
        "--runtimes",
        str(TRACES / "philly-runtime-sample.csv"),
        "--mode",
        "time",
        "--policy",
        "tuxai",
        "--scheduler-config",
        str(bad),
        env={"COLUMNS": "40"},
    )
    line = one_line_error(done)
    assert "unknown setting 'colour'" in line and "weight_short" in line


def test_scheduler_config_changes_the_tuxai_policy(tmp_path: Path) -> None:
    config = tmp_path / "scheduler.yaml"
    config.write_text("weight_short: 0\nweight_age: 1\nweight_size: 0\nmax_age_s: 3600\npreemption: false\n")
    plain = json.loads(
        sim("--mode", "time", "--policy", "tuxai,fifo", "--count", "150", "--nodes", "6", "--json").stdout
    )
    fifo_like = json.loads(
        sim(
            "--mode",
            "time",
            "--policy",
            "tuxai",
            "--count",
            "150",
            "--nodes",
            "6",
            "--json",
            "--scheduler-config",
            str(config),
        ).stdout
    )
    # Age alone with backfill on: not the tuned policy any more.
    assert fifo_like[0]["avg_wait_s"] != plain[0]["avg_wait_s"]


def test_doctor_with_a_missing_interpreter_is_one_line_and_exit_2() -> None:
    done = tuxai("doctor", "--python", "/nonexistent/python")
    line = one_line_error(done)
    assert "cannot run the interpreter /nonexistent/python" in line
