"""The conventions users bring from Slurm: ``--time 90`` is minutes, ``D-HH:MM:SS``, ``--gpus 0.5``."""

from __future__ import annotations

import pytest

from tuxai.errors import UsageError
from tuxai.model.jobfile import spec_from_dict
from tuxai.model.units import parse_duration

SLURM_FORMS = [
    ("90", 60.0, 5400.0),  # minutes
    ("1.5", 60.0, 90.0),
    (90, 60.0, 5400.0),  # a job file's `time: 90`
    ("90s", 60.0, 90.0),  # a unit wins over the bare unit
    ("2h", 60.0, 7200.0),
    ("1d", 60.0, 86400.0),
    ("05:00", 60.0, 300.0),  # minutes:seconds
    ("1:30:00", 60.0, 5400.0),  # hours:minutes:seconds
    ("2-12", 60.0, 2 * 86400.0 + 12 * 3600),  # days-hours
    ("2-12:30", 60.0, 2 * 86400.0 + 12 * 3600 + 30 * 60),  # days-hours:minutes
    ("2-12:30:15", 60.0, 2 * 86400.0 + 12 * 3600 + 30 * 60 + 15),  # days-hours:minutes:seconds
    ("90", 1.0, 90.0),  # elsewhere (grace, the daemon's settings) a bare number stays seconds
]


@pytest.mark.parametrize(("text", "bare_s", "seconds"), SLURM_FORMS)
def test_slurm_duration_forms(text: str | int, bare_s: float, seconds: float) -> None:
    assert parse_duration(text, bare_s) == seconds


@pytest.mark.parametrize("bad", ["soon", "-5", "1-", "2-", "1:2:3:4", "-1:00", "1-2-3", "1-:30", "90 min"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad, 60.0)


def test_a_bare_time_is_minutes_as_a_person_writes_it_and_seconds_on_the_wire() -> None:
    person = spec_from_dict({"command": ["x"], "time": "90"}, "submit", slurm_time=True)
    assert person.time_limit_s == 5400.0
    assert spec_from_dict({"command": ["x"], "time": 90}, "job.yaml", slurm_time=True).time_limit_s == 5400.0
    assert spec_from_dict({"command": ["x"], "time": 90}, "spec").time_limit_s == 90.0  # the API's JSON
    grace = spec_from_dict({"command": ["x"], "grace": "30", "time": "1-00:00:00"}, "submit", slurm_time=True)
    assert (grace.grace_s, grace.time_limit_s) == (30.0, 86400.0)  # grace keeps seconds; Slurm has no grace


def test_a_bad_time_names_the_forms_with_minutes() -> None:
    with pytest.raises(UsageError) as caught:
        spec_from_dict({"command": ["x"], "time": "soon"}, "submit", slurm_time=True)
    assert "submit: time must be a duration such as 90 (minutes), 90s" in caught.value.message
    assert "2-12:00:00" in caught.value.message


@pytest.mark.parametrize("value", [0.5, "0.5", "0.25"])
def test_a_fraction_of_gpus_points_to_gpu_share(value: object) -> None:
    with pytest.raises(UsageError) as caught:
        spec_from_dict({"command": ["x"], "gpus": value}, "submit")
    assert caught.value.message == f"submit: gpus counts whole GPUs, got {value!r}"
    assert caught.value.hint is not None and f"--gpu-share {value}" in caught.value.hint


def test_whole_gpus_as_text_are_still_whole_gpus() -> None:
    assert spec_from_dict({"command": ["x"], "gpus": "2"}, "submit").request.gpus == 2
    with pytest.raises(UsageError, match="gpus must be an integer"):
        spec_from_dict({"command": ["x"], "gpus": "two"}, "submit")


def test_a_time_limit_cap_reads_a_bare_number_as_minutes_as_the_flag_does() -> None:
    from tuxai.scheduler.quotas import quotas_from_text

    quotas = quotas_from_text(
        "limits:\n  default: {max_time: 90, max_gpus: 2}\n  users: {ada: {max_time: 2-00:00:00}}\n", "c"
    )
    assert quotas.default.max_time_s == 5400.0 and quotas.users["ada"].max_time_s == 2 * 86400.0
