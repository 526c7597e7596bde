"""The MLflow commands without MLflow's UI. (Each pipeline step as an MLflow run, read back with the
stock client — the spec as parameters, tuxai's tags, GPU-hours and energy, a metric the step's own code
logged — is checked on the digits example: tests/mlflow/test_digits_example.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.mlflow


def test_mlflow_ui_with_the_light_client_says_in_one_line_what_to_install() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tuxai", "mlflow", "ui"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: MLflow's UI is not in mlflow-skinny, the light client tuxai[mlflow] installs: pip install mlflow"
    )
