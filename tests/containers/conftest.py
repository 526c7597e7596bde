"""The containers tier: real podman, an image built once by ``tuxai image build`` (cached across
runs by its inputs' key), and two fake GPUs through CDI (kind ``tuxai.dev/gpu`` over mknod'ed
/dev/fakegpu0 and /dev/fakegpu1, as ../shared/reference/containers-podman.md found here)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, finish
from tuxai.images.build import build, list_images, remove
from tuxai.images.recipe import Recipe, check_recipe

CDI_SPEC = Path("/etc/cdi/tuxai-test-fakegpu.json")
FAKE_GPUS = (Path("/dev/fakegpu0"), Path("/dev/fakegpu1"))
TUXAI = [sys.executable, "-m", "tuxai"]
BUILD_TIMEOUT_S = 900


@pytest.hookimpl(trylast=True)  # after -k and -m deselected: the first item left builds the image
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs root (podman as root, /etc/cdi, mknod): skipped only when not root.
    The first test's setup builds the image when it is not cached (about 2 min cold here): it
    alone gets 15 minutes; the others keep the project's per-test timeout."""
    for item in items:
        if os.getuid() != 0:
            item.add_marker(pytest.mark.skip(reason="the containers tier runs as root (podman, /etc/cdi, mknod)"))
    if items:
        items[0].add_marker(pytest.mark.timeout(BUILD_TIMEOUT_S))


@pytest.fixture(scope="session")
def python_image() -> str:
    """The tier's small Python image: built by ``tuxai image build`` once, a cache hit after."""
    return build_image("tier-python")


FRAMEWORKS = Path(__file__).parent / "images"
"""The PyTorch and TensorFlow images' requirements (pinned: pip finds them on this host's local index)."""


def build_image(name: str, *options: str) -> str:
    """``tuxai image build --name NAME OPTIONS`` (a cache hit when built before): the image's reference."""
    began = time.monotonic()
    argv = [*TUXAI, "image", "build", "--name", name, "--package", "python3-minimal", *options, "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    built = json.loads(done.stdout)
    print(f"\nimage {built['reference']} ({built['cache']}) in {time.monotonic() - began:.1f} s")
    return str(built["reference"])


@pytest.fixture(scope="session")
def framework_images() -> dict[str, str]:
    """The PyTorch and the TensorFlow image (``make container-images`` builds them cold: minutes each).
    Found in this process (the CLI's cache hit is tested above with the small image): seconds saved."""
    images = {}
    for name in ("torch", "tensorflow"):
        requirements = FRAMEWORKS / f"{name}.txt"
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
        recipe = check_recipe(Recipe(packages=("python3-minimal",), requirements_sha256=digest, name=f"tier-{name}"))
        images[name] = build(recipe, {}, requirements).reference
    return images


SERVE_REQUIREMENTS = FRAMEWORKS / "serve.txt"
"""The serving image's stack besides tuxai (onnxruntime, numpy; pinned: this host's local index has them)."""


def serve_wheel(out: Path) -> Path:
    """A wheel of this tree (reproducible: the same tree gives the same bytes, so the same image key)."""
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out)]
    subprocess.run([*argv, str(Path(__file__).parents[2])], check=True, timeout=300, capture_output=True)
    return next(out.glob("tuxai-*.whl"))


@pytest.fixture(scope="session")
def serve_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The serving image: this tree's wheel and the serving stack, by ``tuxai image build --wheel``
    (``make container-images`` builds it cold; a changed tree is a new key, so a new build)."""
    wheel = serve_wheel(tmp_path_factory.mktemp("wheel"))
    reference = build_image("tier-serve", "--requirements", str(SERVE_REQUIREMENTS), "--wheel", str(wheel))
    for stale in list_images():  # an earlier tree's layer (its base stays: the other inputs' layout)
        if stale.reference.startswith(reference.partition(":")[0] + ":") and stale.reference != reference:
            remove(stale.reference)
    return reference


@pytest.fixture(scope="session")
def fake_gpus() -> Iterator[tuple[Path, ...]]:
    """Two device nodes and the CDI spec that names them "0" and "1" (the simulated box's indices)."""
    for minor, path in enumerate(FAKE_GPUS):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers: opening it is harmless
        assert minor in (0, 1)
    devices = [{"name": str(i), "containerEdits": {"deviceNodes": [{"path": str(p)}]}} for i, p in enumerate(FAKE_GPUS)]
    CDI_SPEC.parent.mkdir(parents=True, exist_ok=True)
    CDI_SPEC.write_text(json.dumps({"cdiVersion": "0.5.0", "kind": "tuxai.dev/gpu", "devices": devices}))
    try:
        yield FAKE_GPUS
    finally:
        CDI_SPEC.unlink(missing_ok=True)
        for path in FAKE_GPUS:
            path.unlink(missing_ok=True)


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A directory everybody can pass through (pytest's own is root's 0700): a job's user must reach it."""
    path = Path(tempfile.mkdtemp(prefix="tuxai-containers-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, fake_gpus: tuple[Path, ...]) -> Iterator[DaemonProcess]:
    """One daemon on the simulated 2-GPU box for the module's tests."""
    process = DaemonProcess(tmp_path_factory.mktemp("containers") / "home").start()
    try:
        yield process
    finally:
        finish(process)
