"""A file made fresh by two shims at once (a gang's ranks share the job's directory): both get one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuxai.executor import files
from tuxai.executor.files import open_user_file


def test_a_fresh_file_another_rank_made_between_unlink_and_create_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = tmp_path / "endpoint"
    endpoint.write_text("the last attempt's URL")
    unlink, raced = os.unlink, []

    def unlink_then_the_other_rank_creates(path: Path) -> None:  # the other rank's O_EXCL lands in between
        unlink(path)
        if not raced:
            raced.append(path)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    monkeypatch.setattr(files.os, "unlink", unlink_then_the_other_rank_creates)
    fd = open_user_file(endpoint, None, fresh=True)  # raised FileExistsError: the rank failed to start
    os.close(fd)
    assert raced and endpoint.read_text() == "" and (endpoint.stat().st_mode & 0o777) == 0o600


def test_a_fresh_file_that_keeps_coming_back_is_refused_in_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, unlink = tmp_path / "endpoint", os.unlink

    def always_back(path: Path) -> None:
        unlink(path)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    endpoint.touch()
    monkeypatch.setattr(files.os, "unlink", always_back)
    with pytest.raises(FileExistsError):
        open_user_file(endpoint, None, fresh=True)
