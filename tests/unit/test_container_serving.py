"""Issue 19, a model server in a container: the pure parts — the served job's command and spec, the
model and endpoint mounts on podman's line, the serving image's wheel input (tests/containers runs it for real)."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from tuxai.cli.jobs import build_spec, serve_command
from tuxai.cli.serve_image import serve_in_image
from tuxai.daemon.containers import container_for
from tuxai.errors import UsageError
from tuxai.executor.podman import Host, Limits, run_argv
from tuxai.executor.rundir import Launch
from tuxai.images.build import write_layout
from tuxai.images.recipe import ImageFile, Recipe, check_recipe
from tuxai.images.wheel_layer import base_layer, write_wheel_layout
from tuxai.model.container import Container
from tuxai.model.jobfile import spec_from_dict, spec_to_dict
from tuxai.model.resources import Allocation

HOST = Host(Limits((1024, 4096), (512, 512)))
JOB_DIR = "/var/lib/tuxai/jobs/9"


def _launch() -> Launch:
    return Launch(9, 1, ("sh",), {}, "/home/ana", f"{JOB_DIR}/output.log", job_dir=JOB_DIR, user=(1000, 1000, ()))


def test_I19_submit_serve_with_image_runs_the_images_python_and_names_the_model(tmp_path: Path) -> None:
    model = tmp_path / "mlp.onnx"
    model.write_bytes(b"onnx")
    flags: dict[str, object] = {"image": "localhost/tuxai/serve:1"}
    command = serve_command(model, flags)
    assert command[:2] == ["sh", "-c"] and command[3:] == ["tuxai-serve", "python3", str(model)]  # never sys.executable
    assert flags["serve_model"] == str(model)
    spec = build_spec(None, flags, command)
    assert spec.serve_model == str(model) and spec_from_dict(spec_to_dict(spec)) == spec
    container = container_for(spec, Allocation("n"))
    assert container is not None and container.model == str(model)
    assert Container.from_dict(container.to_dict()) == container  # through launch.json
    assert serve_command(model, {"image": None})[4] != "python3"  # without an image: this Python, as before


def test_I19_the_served_model_goes_in_read_only_at_its_own_path_from_its_bind() -> None:
    container = Container("img:1", model="/srv/models/mlp.onnx")
    bound = run_argv(_launch(), container, Path(f"{JOB_DIR}/run-1"), Host(HOST.limits, model_source="/run/b.model"))
    assert "--volume=/run/b.model:/srv/models/mlp.onnx:ro" in bound
    assert not [a for a in bound if a.startswith("--volume=/srv/")]  # never the path itself under a root daemon
    own = run_argv(_launch(), container, Path(f"{JOB_DIR}/run-1"), HOST)  # a rootless daemon's: its own path
    assert "--volume=/srv/models/mlp.onnx:/srv/models/mlp.onnx:ro" in own


def test_I19_the_endpoint_file_is_mounted_where_the_daemon_reads_it() -> None:
    argv = run_argv(_launch(), Container("img:1"), Path(f"{JOB_DIR}/run-1"), HOST)
    assert f"--volume={JOB_DIR}/endpoint:{JOB_DIR}/endpoint" in argv
    before = run_argv(_launch(), Container("img:1"), Path(f"{JOB_DIR}/run-1"), Host(HOST.limits, endpoint=False))
    assert not [a for a in before if "endpoint" in a]  # not made yet (no shim): podman would refuse to start


@pytest.mark.parametrize("path", ["relative/m.onnx", "/a:b/m.onnx", "/a,ro/m.onnx", "/a/../etc/shadow"])
def test_I19_a_served_models_path_cannot_add_to_its_mount(path: str) -> None:
    with pytest.raises(UsageError, match=r"model .* mounted at its own path"):
        spec_from_dict({"command": "x", "image": "img:1", "serve_model": path})


def test_I19_serve_model_without_an_image_and_an_alias_with_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="serve_model must be given with image"):
        spec_from_dict({"command": "x", "serve_model": "/srv/m.onnx"})
    with pytest.raises(UsageError, match="registry alias is served on the host only"):
        serve_command(Path("models:/m@champion"), {"image": "img:1"})
    with pytest.raises(UsageError, match="no such model"):
        serve_command(tmp_path / "missing.onnx", {"image": "img:1"})


def test_I19_tuxai_serve_image_refuses_the_flags_the_job_decides(tmp_path: Path) -> None:
    fixed = {"--port": True, "--host": False, "--token-file": None, "--endpoint-file": tmp_path / "e"}
    with pytest.raises(UsageError, match=r"^--endpoint-file, --port cannot be used with --image"):
        serve_in_image(tmp_path / "m.onnx", "img:1", 0, None, fixed)


def test_I19_a_local_wheel_is_an_input_of_the_image_key() -> None:
    plain = Recipe(requirements_sha256="ab")
    assert "wheels" not in plain.canonical()  # the keys of images built before (the tier's torch, TF) hold
    wheel = Recipe(requirements_sha256="ab", wheels=(ImageFile("t-1-py3-none-any.whl", "c"),))
    other = Recipe(requirements_sha256="ab", wheels=(ImageFile("t-1-py3-none-any.whl", "d"),))
    assert len({plain.key, wheel.key, other.key}) == 3  # the wheel's bytes are in the key
    with pytest.raises(UsageError, match="not a wheel's file name"):
        check_recipe(Recipe(wheels=(ImageFile("../x.whl", "c"),)))


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _base(tmp: Path, recipe: Recipe, site: str | None) -> Path:
    """A base layout as ``build`` writes it, over a small root file system."""
    tmp.mkdir(exist_ok=True)
    rootfs = tmp / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        for directory in ["opt", "opt/venv", *([site] if site else [])]:
            info = tarfile.TarInfo(f"./{directory}")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    write_layout(tmp / "base", recipe, rootfs)
    return tmp / "base"


def test_I19_wheels_are_a_reproducible_layer_over_the_cached_base_unpacked_into_its_venv(tmp_path: Path) -> None:
    site = "opt/venv/lib/python3.11/site-packages"
    wheel = _wheel(tmp_path / "t-1-py3-none-any.whl", {"t/__init__.py": b"X = 1\n", "t-1.dist-info/METADATA": b"m",
                                                       "t-1.data/scripts/t": b"#!/bin/sh\n"})  # fmt: skip
    base = _base(tmp_path, Recipe(requirements_sha256="ab"), site)
    recipe = Recipe(requirements_sha256="ab", wheels=(ImageFile(wheel.name, "c"),))
    ids = []
    for n in (1, 2):
        write_wheel_layout(tmp_path / f"l{n}", recipe, base, [wheel])
        lower = base_layer(base)[0]
        index = json.loads((tmp_path / f"l{n}" / "index.json").read_text())
        ids.append(index["manifests"][0]["digest"])
    assert ids[0] == ids[1]  # the same base and wheels: the same image
    manifest = json.loads((tmp_path / "l1" / "blobs" / "sha256" / ids[0].removeprefix("sha256:")).read_text())
    assert manifest["layers"][0]["digest"] == f"sha256:{lower}"  # the base's layer, linked
    upper = tmp_path / "l1" / "blobs" / "sha256" / manifest["layers"][1]["digest"].removeprefix("sha256:")
    with tarfile.open(upper) as tar:
        members = {m.name: m for m in tar}
    assert members[f"{site}/t/__init__.py"].mtime == 0 and members[f"{site}/t/__init__.py"].uid == 0
    assert members["opt/venv/bin/t"].mode == 0o755 and f"{site}/t-1.dist-info/INSTALLER" in members
    with pytest.raises(UsageError, match="--wheel goes into the image's /opt/venv"):
        write_wheel_layout(tmp_path / "l3", recipe, _base(tmp_path / "novenv", Recipe(), None), [wheel])
