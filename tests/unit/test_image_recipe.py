"""Issue 19, `tuxai image build`: the recipe's key, its checks, and the OCI documents (pure)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tuxai.errors import UsageError
from tuxai.images.build import list_images, mmdebstrap_argv, remove
from tuxai.images.recipe import LABEL, ImageFile, Recipe, canonical_bytes, check_recipe, oci_config, oci_manifest


def test_I19_same_inputs_same_key_one_changed_package_another() -> None:
    base = Recipe("bookworm", ("python3-minimal", "python3-numpy"))
    assert Recipe("bookworm", ("python3-numpy", "python3-minimal", "python3-numpy"), name="other").key == base.key
    assert Recipe("bookworm", ("python3-minimal", "python3-scipy")).key != base.key
    assert Recipe("trixie", base.packages).key != base.key
    assert Recipe("bookworm", base.packages, requirements_sha256="ab").key != base.key
    assert Recipe("bookworm", base.packages, files=(ImageFile("/app.py", "cd"),)).key != base.key
    assert base.reference == f"localhost/tuxai/image:{base.key[:16]}"


def test_I19_the_image_config_carries_no_build_time_so_its_id_repeats() -> None:
    recipe = Recipe()
    config = canonical_bytes(oci_config(recipe, "a" * 64, "amd64"))
    assert config == canonical_bytes(oci_config(recipe, "a" * 64, "amd64"))
    document = oci_config(recipe, "a" * 64, "amd64")
    assert document["created"] == "1970-01-01T00:00:00Z" and document["config"]["Labels"] == {LABEL: recipe.key}
    assert document["rootfs"]["diff_ids"] == ["sha256:" + "a" * 64]
    manifest = oci_manifest(("c" * 64, 10), ("a" * 64, 20))
    assert manifest["layers"][0]["digest"] == "sha256:" + "a" * 64 and manifest["config"]["size"] == 10


@pytest.mark.parametrize(
    ("recipe", "named"),
    [
        (Recipe(suite="Bookworm;rm"), "--suite"),
        (Recipe(packages=("python3 numpy",)), "--package"),
        (Recipe(name="Bad/Name"), "--name"),
        (Recipe(files=(ImageFile("app.py", "x"),)), "--file"),
        (Recipe(files=(ImageFile("/a/../etc/passwd", "x"),)), "--file"),
    ],
)
def test_I19_a_bad_input_is_one_clear_error(recipe: Recipe, named: str) -> None:
    with pytest.raises(UsageError, match=named):
        check_recipe(recipe)


def test_I19_mmdebstrap_line_installs_packages_files_and_requirements() -> None:
    recipe = Recipe("bookworm", ("python3-minimal",))
    argv = mmdebstrap_argv(recipe, {"/app.py": Path("/src/app.py")}, Path("/c/k/wheels"), Path("/c/rootfs.tar"))
    assert argv[:2] == ["mmdebstrap", "--variant=minbase"]
    assert "--include=python3-minimal,python3-pip,python3-venv" in argv
    assert "--customize-hook=upload /src/app.py /app.py" in argv
    assert "--customize-hook=copy-in /c/k/wheels /tmp" in argv
    assert any("/opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels" in a for a in argv)
    assert argv[-2:] == ["bookworm", "/c/rootfs.tar"]
    assert not any("pip" in a for a in mmdebstrap_argv(recipe, {}, None, Path("/r.tar")))


def test_I19_a_complete_layout_is_reused_and_a_missing_input_file_is_named(tmp_path: Path) -> None:
    from tuxai.images.build import _layout

    done = tmp_path / "done"
    done.mkdir()
    (done / "index.json").write_text("{}")
    assert _layout(Recipe(), done, {}, None) == "layout"
    with pytest.raises(UsageError, match="no such file to build the image from"):
        _layout(Recipe(), tmp_path / "new", {"/app.py": tmp_path / "missing.py"}, None)


def _stand_in_podman(tmp_path: Path, images: list[dict[str, object]]) -> Path:
    """A ``podman`` program on PATH that answers ``images --format json`` with ``images`` and logs each call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "images.json").write_text(json.dumps(images))
    program = bin_dir / "podman"
    program.write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n[ "$1" = images ] && cat {tmp_path}/images.json\nexit 0\n'
    )
    program.chmod(0o755)
    return bin_dir


def test_S6_image_rm_never_removes_outside_the_cache_by_a_forged_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    (victim / "keep").mkdir(parents=True)
    (tmp_path / "cache" / "sub").mkdir(parents=True)  # the cache is there: ".." climbs out of it
    key = "./" * 26 + "../../victim"  # 64 characters: the length check let it through
    assert len(key) == 64 and (tmp_path / "cache" / "sub" / key).resolve() == victim
    forged = {"Id": "f" * 64, "Names": ["localhost/tuxai/evil:1"], "Labels": {LABEL: key}, "Size": 1}
    monkeypatch.setenv("PATH", f"{_stand_in_podman(tmp_path, [forged])}:{os.environ['PATH']}")
    remove("localhost/tuxai/evil:1", cache=tmp_path / "cache" / "sub")
    assert (victim / "keep").is_dir()  # the image went, the forged key's path did not
    assert "rmi --force " + "f" * 64 in (tmp_path / "calls").read_text()


def test_S6_image_ls_and_rm_know_only_the_images_tuxai_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = {"Id": "a" * 64, "Names": ["localhost/tuxai/train:3f2a"], "Labels": {LABEL: "3" * 64}, "Size": 2}
    other = {"Id": "b" * 64, "Names": ["docker.io/library/python:3"], "Labels": {LABEL: "4" * 64}, "Size": 3}
    monkeypatch.setenv("PATH", f"{_stand_in_podman(tmp_path, [ours, other])}:{os.environ['PATH']}")
    assert [i.reference for i in list_images()] == ["localhost/tuxai/train:3f2a"]
    with pytest.raises(UsageError, match="no image built by tuxai"):
        remove("b" * 12, cache=tmp_path / "cache")
