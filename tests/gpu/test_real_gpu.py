"""Opt-in checks for a machine with a real NVIDIA GPU (`make test-gpu` on the device machine).

They fail, not skip, where there is no GPU: run them only where one is.
The recording they leave in $TUXAI_GPU_RECORD_DIR (default: a temporary
folder) is what to commit as a new fixture under tests/fixtures/recordings/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tuxai.doctor.report import json_schema
from tuxai.hardware.nvml import nvml_snapshot, parse_nvml_snapshot

pytestmark = pytest.mark.gpu


def test_nvml_sees_the_gpus_nvidia_smi_lists() -> None:
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    snapshot = nvml_snapshot()
    assert snapshot is not None, "NVML did not load on a machine where nvidia-smi works"
    gpus = parse_nvml_snapshot(snapshot)
    assert len(gpus) == sum(1 for line in listed.splitlines() if line.startswith("GPU "))
    for gpu in gpus:
        assert gpu.uuid and gpu.uuid in listed
        assert gpu.memory_total_bytes and gpu.compute_capability


def test_doctor_records_and_replays_this_machine(tmp_path: Path) -> None:
    folder = Path(os.environ.get("TUXAI_GPU_RECORD_DIR", tmp_path / "recording"))
    recorded = subprocess.run(
        [sys.executable, "-m", "tuxai", "doctor", "--json", "--record", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert recorded.returncode in (0, 1), recorded.stderr
    document = json.loads(recorded.stdout)
    jsonschema.validate(document, json_schema())
    assert document["gpus"] and document["gpus"][0]["vendor"] == "nvidia"
    assert (folder / "nvml.json").is_file() and (folder / "nvidia-smi-topo-m.txt").is_file()
    replayed = subprocess.run(
        [sys.executable, "-m", "tuxai", "doctor", "--json", "--replay", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    again = json.loads(replayed.stdout)
    document.pop("source"), again.pop("source")
    assert document == again
