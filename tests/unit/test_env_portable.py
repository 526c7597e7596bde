"""A requirements/lock file sent to cluster nodes as text names no path relative to itself (review item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.envs.node import lock_text
from tuxai.envs.portable import relative_references
from tuxai.errors import UsageError

RELATIVE = [
    "-r base.txt",
    "-rbase.txt",
    "--requirement=../base.txt",
    "-c c.txt",
    "--constraint c.txt",
    "-e ./pkg",
    "--editable ../pkg",
    "./wheels/x-1.0-py3-none-any.whl",
    "x-1.0-py3-none-any.whl",
    "wheels/x-1.0.tar.gz",
    "--find-links ./wheels",
    "-f wheels",
    "file:./x",
    "tiny @ file:./tiny",
    "tiny @ ./tiny",
]
SELF_CONTAINED = [
    "numpy==2.0.1",
    "torch>=2; python_version >= '3.10'  # a comment: ./not-a-path",
    "-r /opt/base.txt",
    "-e /srv/pkg",
    "/opt/wheels/x-1.0-py3-none-any.whl",
    "--find-links /opt/wheels",
    "--find-links https://example.org/wheels/",
    "-e git+https://github.com/o/r.git#egg=r",
    "tiny @ file:///opt/tiny",
    "tiny@https://example.org/tiny-1.0.tar.gz",
    "--index-url https://pypi.org/simple",
    "--extra-index-url=https://example.org/simple",
    "https://example.org/x-1.0-py3-none-any.whl",
]


@pytest.mark.parametrize("line", RELATIVE)
def test_F4_a_reference_relative_to_the_file_is_found(line: str) -> None:
    assert relative_references(f"numpy==2.0\n{line}\n") == [line]


@pytest.mark.parametrize("line", SELF_CONTAINED)
def test_F4_a_self_contained_line_is_not_flagged(line: str) -> None:
    assert relative_references(f"{line}\n") == []


def test_F4_a_uv_lock_path_or_editable_source_is_found() -> None:
    lock = (
        'version = 1\n[[package]]\nname = "app"\nversion = "0.1"\nsource = { editable = "." }\n'
        '[[package]]\nname = "lib"\nversion = "1.0"\nsource = { path = "../lib" }\n'
        '[[package]]\nname = "ok"\nversion = "1.0"\nsource = { registry = "https://pypi.org/simple" }\n'
        '[[package]]\nname = "abs"\nversion = "1.0"\nsource = { directory = "/srv/abs" }\n'
    )
    assert relative_references(lock) == ['source = { editable = "." }', 'source = { path = "../lib" }']


def test_F4_submit_refuses_such_a_file_in_one_line(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.0\n-r base.txt\n-e ./pkg\n")
    with pytest.raises(UsageError) as refused:
        lock_text(str(requirements))
    assert "`-r base.txt` (and 1 more) is relative to the file" in refused.value.message
    assert "self-contained" in (refused.value.hint or "") and "\n" not in refused.value.message
