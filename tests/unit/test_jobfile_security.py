"""The job spec validator refuses what would corrupt the scheduler's accounting or kill a shim.

Findings of the security issue: C3 (non-positive sizes), C4 (NaN and infinity), C5 (absurd
durations), C6 (NUL bytes and bad variable names), C7 (text that is not UTF-8).
"""

from __future__ import annotations

import pytest

from tuxai.errors import UsageError
from tuxai.model import jobfile
from tuxai.model.jobfile import parse_duration, spec_from_dict
from tuxai.model.units import parse_bytes


def refused(data: dict[str, object]) -> str:
    """The message of the ``UsageError`` that ``spec_from_dict`` raises for ``data``."""
    with pytest.raises(UsageError) as caught:
        spec_from_dict({"command": ["true"], **data}, origin="spec")
    return caught.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [("mem", -1), ("mem", 0), ("mem", "0GiB"), ("gpu_mem", -(2**40)), ("gpu_mem", 0), ("mem", "0.0000001")],
)
def test_C3_non_positive_sizes_are_refused(field: str, value: object) -> None:
    assert f"spec: {field} must be a size such as 512MiB or 32GiB, above 0" in refused({field: value})


def test_C3_sizes_beyond_any_machine_are_refused_not_stored() -> None:
    assert "mem must be at most 1024 TiB" in refused({"mem": "99999999999999999999TiB"})
    assert "gpu_mem must be at most" in refused({"gpu_mem": 2**70})


def test_C3_a_gpu_share_that_rounds_to_nothing_is_refused() -> None:
    assert "gpu_share must be a fraction of one GPU between 0.001 and 1" in refused({"gpu_share": 1e-9})


def test_C3_parse_bytes_refuses_negative_and_boolean_counts() -> None:
    for bad in (-1, True):
        with pytest.raises(ValueError):
            parse_bytes(bad)
    assert parse_bytes(0) == 0  # zero bytes is a quantity; the job file says whether it is allowed


@pytest.mark.parametrize("field", ["time", "grace", "retry_backoff"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_C4_nan_and_infinite_durations_are_refused(field: str, value: float) -> None:
    assert f"spec: {field} must be a finite duration" in refused({field: value})


@pytest.mark.parametrize(("field", "value"), [("gpu_share", float("nan")), ("priority", float("nan"))])
def test_C4_nan_in_other_numbers_is_refused(field: str, value: float) -> None:
    assert f"spec: {field} must be" in refused({field: value})


def test_C4_parse_duration_refuses_non_finite_values() -> None:
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            parse_duration(bad)


@pytest.mark.parametrize("field", ["time", "grace", "retry_backoff"])
@pytest.mark.parametrize("value", [1e300, "99999999999999d", "366d", "1:9999999999999999999999999999999999999999:00"])
def test_C5_durations_beyond_a_year_are_refused_with_the_cap(field: str, value: object) -> None:
    message = refused({field: value})
    assert f"spec: {field} must be at most 365 days" in message


def test_C5_a_year_is_still_allowed() -> None:
    assert spec_from_dict({"command": ["true"], "time": "365d"}).time_limit_s == 365 * 86400.0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"command": ["echo", "a\x00b"]}, "command"),
        ({"command": "echo 'a\x00b'"}, "command"),
        ({"export": {"A": "x\x00y"}}, "export"),
        ({"export": ["A=x\x00y"]}, "export"),
        ({"workdir": "/tmp\x00/x"}, "workdir"),
        ({"env": "venv\x00"}, "env"),
        ({"name": "a\x00b"}, "name"),
    ],
)
def test_C6_nul_bytes_are_refused_naming_the_field(data: dict[str, object], field: str) -> None:
    message = refused(data)
    assert f"spec: {field}" in message and "NUL" in message


@pytest.mark.parametrize(
    ("environment", "words"),
    [
        ({"A\x00": "x"}, "NUL"),
        ({"A": "x\x00"}, "NUL"),
        ({"A=B": "x"}, "'A=B' is not a variable name"),
        ({"": "x"}, "'' is not a variable name"),
        ({"A": "\udc80"}, "UTF-8"),
    ],
)
def test_C6_environment_variables_are_checked(environment: dict[str, str], words: str) -> None:
    with pytest.raises(UsageError) as caught:
        jobfile.check_environment(environment, "environment")
    assert caught.value.message.startswith("environment: ") and words in caught.value.message


def test_C6_ordinary_environments_pass_even_with_shell_functions() -> None:
    env = {"PATH": "/usr/bin", "BASH_FUNC_module%%": "() {  eval x\n}", "LANG": "C.UTF-8"}
    assert jobfile.check_environment(env, "environment") == env


@pytest.mark.parametrize(
    "data",
    [
        {"command": ["echo", "\ud800"]},
        {"name": "\udfff"},
        {"workdir": "/tmp/\ud800"},
        {"export": {"A": "\ud800"}},
        {"gpu_type": "A100|\ud800"},
    ],
)
def test_C7_text_that_is_not_utf8_is_refused(data: dict[str, object]) -> None:
    assert "UTF-8" in refused(data)
