"""Shared test helpers: where the fixtures are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# With MLflow's client installed a plain `tuxai submit` is an MLflow run (docs/lifecycle.md): off in every
# tier but tests/mlflow, whose conftest turns it back on.
os.environ.setdefault("TUXAI_MLFLOW", "off")

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


def fixture_text(relative: str) -> str:
    """The text of a recorded tool output under tests/fixtures/."""
    return (FIXTURES / relative).read_text()


@pytest.fixture
def fixtures() -> Path:
    """The fixtures folder."""
    return FIXTURES


# The `daemon` fixture (a real daemon process on a simulated 2-GPU box) for every tier.
from tests.daemon_helpers import daemon  # noqa: E402, F401
