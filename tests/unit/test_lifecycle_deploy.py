"""Deploy by alias, its pure parts (lifecycle.deploy): the target read, the file a version serves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuxai.cli.mlflow_ui import UI_PAGE, ui_missing
from tuxai.errors import UsageError
from tuxai.lifecycle.deploy import ModelAlias, is_model_uri, model_file, parse_model_uri, prune_versions, serving_dir


def test_a_registry_alias_is_read_and_anything_else_refused_in_one_line() -> None:
    assert parse_model_uri("models:/digits@champion") == ModelAlias("digits", "champion")
    assert str(ModelAlias("digits", "champion")) == "models:/digits@champion"
    for bad in ("models:/digits/3", "models:/digits@", "models:/@champion", "models:/a/b@c", "digits@champion"):
        with pytest.raises(UsageError, match="is not a registry alias"):
            parse_model_uri(bad)
    assert is_model_uri("models:/digits@champion") and not is_model_uri("repo/digits")
    where = serving_dir(ModelAlias("digits", "champion"), {"HOME": "/home/ada"})
    assert where == Path("/home/ada/.local/share/tuxai/mlflow/serving/digits@champion")


def test_onnx_is_served_first_then_torch_then_savedmodel(tmp_path: Path) -> None:
    (tmp_path / "model/data").mkdir(parents=True)
    (tmp_path / "model/MLmodel").write_text("flavors: {}\n")
    (tmp_path / "model/data/model.pt").write_bytes(b"torch")
    assert model_file(tmp_path) == tmp_path / "model/data/model.pt"
    (tmp_path / "model/model.onnx").write_bytes(b"onnx")
    assert model_file(tmp_path) == tmp_path / "model/model.onnx"
    saved = tmp_path / "saved"
    (saved / "tf/variables").mkdir(parents=True)
    (saved / "tf/saved_model.pb").write_bytes(b"pb")
    assert model_file(saved) == saved / "tf"


def test_a_version_with_nothing_servable_says_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model/model.pkl").write_bytes(b"pickle")
    with pytest.raises(UsageError, match=r"no servable model among the version's artifacts: model/model\.pkl"):
        model_file(tmp_path)


def test_mlflow_ui_says_which_package_it_lacks(tmp_path: Path) -> None:
    assert "pip install 'tuxai[mlflow]'" in str(ui_missing(None))
    assert "not in mlflow-skinny" in str(ui_missing(tmp_path))  # the light client: no UI pages
    (tmp_path / UI_PAGE).parent.mkdir(parents=True)
    (tmp_path / UI_PAGE).write_text("<html></html>")
    assert ui_missing(tmp_path) is None


def _versions(directory: Path, served_at: dict[int, float]) -> None:
    for number, at in served_at.items():
        (directory / str(number)).mkdir()
        (directory / str(number) / "model.onnx").write_bytes(b"onnx")
        os.utime(directory / str(number), (at, at))


def test_E17_4_versions_no_alias_serves_are_pruned_keeping_the_last_served(tmp_path: Path) -> None:
    _versions(tmp_path, {1: 100.0, 2: 200.0, 3: 300.0, 4: 400.0, 5: 500.0})
    (tmp_path / "config.yaml").write_text("version_policy: {specific: [5]}\n")
    (tmp_path / ".fetch-abc").mkdir()  # a fetch under way: not a version
    assert prune_versions(tmp_path, 5, keep=3) == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fetch-abc", "3", "4", "5", "config.yaml"]
    # Rolled back to 3: 5, the version just left, stays; 4 goes.
    os.utime(tmp_path / "3", (600.0, 600.0))
    assert prune_versions(tmp_path, 3, keep=2) == [4]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["3", "5"]
    assert prune_versions(tmp_path, 3, keep=1) == []  # the version just left always stays (it may still answer)
