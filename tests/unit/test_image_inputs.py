"""``tuxai image build``'s inputs are read once: the key names the bytes the image is built from, even
when the file is swapped between the hash and the build (U3)."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.wheels import make_wheel
from tuxai.cli.images import run_build
from tuxai.errors import UsageError
from tuxai.images.build import Built
from tuxai.images.recipe import Recipe
from tuxai.images.wheel_layer import write_layer


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_U3_the_image_key_names_the_bytes_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = make_wheel(tmp_path, "tiny", {"tiny/__init__.py": "VALUE = 42\n"})
    app, requirements = tmp_path / "app.py", tmp_path / "requirements.txt"
    app.write_text("print('mine')\n")
    requirements.write_text("tiny==1.0\n")
    seen: dict[str, str] = {}
    keys: list[Recipe] = []

    def build(recipe: Recipe, files: dict[str, Path], req: Path | None, wheels: Sequence[Path] = ()) -> Built:
        """The build's own reads (podman and mmdebstrap stand aside), after the user swapped every input."""
        make_wheel(tmp_path, "tiny", {"tiny/__init__.py": "VALUE = 'swapped'\n"})
        app.write_text("print('swapped')\n")
        requirements.write_text("evil==6.6.6\n")
        assert req is not None
        keys.append(recipe)
        seen.update({"requirements": _sha(req), "/app.py": _sha(files["/app.py"]), "wheel": _sha(wheels[0])})
        write_layer(wheels, "opt/venv/lib/python3.11/site-packages", tmp_path / "layer.tar")
        with tarfile.open(tmp_path / "layer.tar") as layer:
            member = layer.extractfile("opt/venv/lib/python3.11/site-packages/tiny/__init__.py")
            seen["module"] = member.read().decode() if member else ""
        return Built(recipe.reference, "0" * 64, "built", 0.0)

    monkeypatch.setattr("tuxai.images.build.build", build)
    assert run_build("bookworm", None, requirements, [f"{app}:/app.py"], "x", True, [wheel]) == 0
    (recipe,) = keys
    assert seen["requirements"] == recipe.requirements_sha256 and seen["/app.py"] == recipe.files[0].sha256
    assert seen["wheel"] == recipe.wheels[0].sha256 and seen["module"] == "VALUE = 42\n"


def test_U3_an_input_that_is_a_link_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "real.py").write_text("print('x')\n")
    (tmp_path / "link.py").symlink_to(tmp_path / "real.py")
    with pytest.raises(UsageError, match="link"):
        run_build("bookworm", None, None, [f"{tmp_path / 'link.py'}:/app.py"], "x", True, [])
