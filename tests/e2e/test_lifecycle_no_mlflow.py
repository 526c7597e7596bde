"""Without the ``tuxai[mlflow]`` extra (MLflow's import made to fail, installed or not), the MLflow parts
of the CLI say in one line how to get it, and exit non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.test_doctor_cli import one_line_error

WITHOUT_MLFLOW = (
    "import sys; sys.modules['mlflow'] = None; from tuxai.cli.main import run; sys.argv[0] = 'tuxai'; run()"
)


def test_serve_models_alias_without_the_extra_names_it_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_MLFLOW, "serve", "models:/digits@champion", "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode != 0
    line = one_line_error(done)
    assert "MLflow" in line and "pip install 'tuxai[mlflow]'" in line, line
