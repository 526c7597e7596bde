"""``tuxai image build / ls / rm``: an image from a ``Recipe`` through mmdebstrap, no registry.

    mmdebstrap --variant=minbase --include=PACKAGES SUITE rootfs.tar   (SOURCE_DATE_EPOCH=0)
    → an OCI layout in the cache, <cache>/<key>/ (the tar is its one layer, moved, not copied)
    → podman pull oci:<cache>/<key>, tagged localhost/tuxai/<name>:<key[:16]>

The cache lives outside any clone (``/var/cache/tuxai/images`` for root, else
``$XDG_CACHE_HOME/tuxai/images``), so a second build of the same inputs — also from a fresh
clone — is a cache hit: podman has the image (no work), or the layout is there (one pull).
The layout's ``index.json`` is written last: a layout without it is an interrupted build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tuxai.errors import TuxaiError, UsageError
from tuxai.images.recipe import LABEL, REPOSITORY, SOURCE_DATE_EPOCH, Recipe, canonical_bytes, oci_config, oci_manifest
from tuxai.images.wheel_layer import write_wheel_layout

ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}
KEY = re.compile(r"[0-9a-f]{64}")
"""A recipe's key (``Recipe.key``: a sha256), the only name a cached layout has."""


class ImageBuildError(TuxaiError):
    """mmdebstrap or podman failed to make the image."""


@dataclass(frozen=True)
class Built:
    """A build's result: the image's name and ID, and where it came from (``cache``: podman, layout or built)."""

    reference: str
    image_id: str
    cache: str
    seconds: float


def cache_root() -> Path:
    """Where built layouts are kept between runs and clones."""
    if os.getuid() == 0:
        return Path("/var/cache/tuxai/images")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuxai" / "images"


def _run(argv: list[str], what: str, env: dict[str, str] | None = None, timeout_s: float = 1800) -> str:
    """Run a tool, its stdout back.

    Raises:
        ImageBuildError: it is missing or failed (its last lines of output in the message).
    """
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise ImageBuildError(f"{argv[0]} is not installed", hint=f"apt-get install {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise ImageBuildError(f"{what} took over {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise ImageBuildError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def image_id(reference: str) -> str | None:
    """The ID of a local image, or None when podman has no such image."""
    done = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", reference], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return digest, len(data)


def mmdebstrap_argv(recipe: Recipe, files: dict[str, Path], wheels: Path | None, output: Path) -> list[str]:
    """The mmdebstrap line for a recipe: packages, files uploaded, and the requirements installed into
    /opt/venv from ``wheels`` (a directory with ``requirements.txt`` and the wheels ``pip download`` got
    on the host, with the host's pip settings: the build itself needs no index)."""
    packages = list(recipe.packages) + (["python3-venv", "python3-pip"] if wheels else [])
    argv = ["mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(sorted(set(packages)))}"]
    for dest, source in sorted(files.items()):
        argv.append(f"--customize-hook=upload {source} {dest}")
    if wheels is not None:
        pip = "/opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels"
        pip += " -r /tmp/wheels/requirements.txt"
        argv += [
            f"--customize-hook=copy-in {wheels} /tmp",
            '--customize-hook=chroot "$1" python3 -m venv /opt/venv',
            f'--customize-hook=chroot "$1" {pip}',
            '--customize-hook=rm -rf "$1/tmp/wheels"',
        ]
    return [*argv, recipe.suite, str(output)]


def export_lock(lock: Path, requirements: Path) -> None:
    """A uv lockfile's packages as a requirements file (``uv export --frozen``: the lock's exact
    versions, no resolution, no network), for its project (the ``pyproject.toml`` beside it).

    Raises:
        UsageError: no project beside the lock.
        ImageBuildError: uv could not export it (its last lines in the message).
    """
    if not (lock.parent / "pyproject.toml").is_file():
        raise UsageError(f"{lock}: a uv.lock is read with its project, and {lock.parent} has no pyproject.toml")
    argv = [sys.executable, "-m", "uv", "export", "--frozen", "--no-emit-project", "--no-hashes", "--quiet"]
    argv += ["--format", "requirements-txt", "--project", str(lock.parent), "--output-file", str(requirements)]
    _run(argv, f"uv export of {lock}")


def download_wheels(requirements: Path, wheels: Path) -> Path:
    """``pip download`` of the requirements' wheels into ``wheels`` (with the host's pip settings); a
    ``uv.lock`` is exported to requirements first (``export_lock``).

    Raises:
        ImageBuildError: pip could not get them (its last lines in the message).
    """
    wheels.mkdir(parents=True)
    if requirements.name == "uv.lock":
        export_lock(requirements, wheels / "requirements.txt")
    else:
        shutil.copyfile(requirements, wheels / "requirements.txt")
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", str(wheels)]
    _run([*argv, "-r", str(wheels / "requirements.txt")], "pip download of the requirements")
    return wheels


def write_layout(layout: Path, recipe: Recipe, rootfs: Path) -> None:
    """Turn a root file system tar into an OCI layout (the tar moved in as the one layer)."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    layer = _sha256(rootfs), rootfs.stat().st_size
    os.replace(rootfs, layout / "blobs" / "sha256" / layer[0])
    architecture = ARCHITECTURES.get(platform.machine(), platform.machine())
    config = _blob(layout, canonical_bytes(oci_config(recipe, layer[0], architecture)))
    manifest = _blob(layout, canonical_bytes(oci_manifest(config, layer)))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest[0]}",
         "size": manifest[1]}]}  # fmt: skip
    (layout / "index.json.tmp").write_bytes(canonical_bytes(index))
    os.replace(layout / "index.json.tmp", layout / "index.json")  # last: the layout is complete


def _layout(
    recipe: Recipe, layout: Path, files: dict[str, Path], requirements: Path | None, local: Sequence[Path] = ()
) -> str:
    """The recipe's OCI layout in the cache: "layout" when it was there, "built" when made now.

    Raises:
        UsageError: a file to copy in is missing.
        ImageBuildError: mmdebstrap failed.
    """
    if (layout / "index.json").is_file():
        return "layout"
    for path in [*files.values(), *([requirements] if requirements else []), *local]:
        if not path.is_file():
            raise UsageError(f"{path}: no such file to build the image from")
    if recipe.wheels:  # the other inputs' layout (cached by their key), the wheels a layer over it
        base = dataclasses.replace(recipe, wheels=())
        with open(layout.parent / f"{base.key}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _layout(base, layout.parent / base.key, files, requirements)
        shutil.rmtree(layout, ignore_errors=True)
        try:
            write_wheel_layout(layout, recipe, layout.parent / base.key, local)
        except BaseException:
            shutil.rmtree(layout, ignore_errors=True)
            raise
        return "built"
    shutil.rmtree(layout, ignore_errors=True)  # an interrupted build's remains
    layout.mkdir(parents=True)
    rootfs = layout / "rootfs.tar"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
    try:
        wheels = download_wheels(requirements, layout / "wheels") if requirements else None
        _run(mmdebstrap_argv(recipe, files, wheels, rootfs), "mmdebstrap", env)
        write_layout(layout, recipe, rootfs)
        if wheels is not None:
            shutil.rmtree(wheels)
    except BaseException:
        shutil.rmtree(layout, ignore_errors=True)
        raise
    return "built"


def build(
    recipe: Recipe,
    files: dict[str, Path],
    requirements: Path | None = None,
    cache: Path | None = None,
    wheels: Sequence[Path] = (),
) -> Built:
    """The recipe's image in podman: already there, pulled from the cached layout, or built
    (``wheels``: the local wheel files ``recipe.wheels`` names, a layer over the other inputs' image).

    Raises:
        UsageError: a file to copy in is missing.
        ImageBuildError: mmdebstrap or podman failed.
    """
    began = time.monotonic()
    found = image_id(recipe.reference)
    if found:
        return Built(recipe.reference, found, "podman", time.monotonic() - began)
    layout = (cache or cache_root()) / recipe.key
    layout.parent.mkdir(parents=True, exist_ok=True)
    with open(layout.parent / f"{recipe.key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two builds of one recipe at once: the second waits, then finds it
        source = _layout(recipe, layout, files, requirements, wheels)
    pulled = _run(["podman", "pull", "--quiet", f"oci:{layout}"], "podman pull of the layout").strip().splitlines()
    _run(["podman", "tag", pulled[-1], recipe.reference], "podman tag")
    with contextlib.suppress(ImageBuildError):  # the name the oci: transport gives it (localhost/<layout path>)
        _run(["podman", "untag", pulled[-1], f"localhost{layout}:latest"], "podman untag")
    return Built(recipe.reference, image_id(recipe.reference) or pulled[-1], source, time.monotonic() - began)


@dataclass(frozen=True)
class Listed:
    """One image tuxai built: its name, ID, inputs key and size."""

    reference: str
    image_id: str
    key: str
    size_bytes: int


def cache_key(label: object) -> str:
    """An image's inputs key as its label says it, when it is one (64 hex digits), else "".

    The label is whoever made the image's: never a path (security issue S6).

    >>> cache_key("3" * 64) == "3" * 64, cache_key("./" * 26 + "../../victim")
    (True, '')
    """
    return label if isinstance(label, str) and KEY.fullmatch(label) else ""


def list_images() -> list[Listed]:
    """The images tuxai built: podman's, labelled with their inputs key and named by tuxai
    (``localhost/tuxai/…``); another image carrying the label is not ours to list or remove."""
    out = _run(["podman", "images", "--filter", f"label={LABEL}", "--format", "json"], "podman images")
    listed = []
    for image in json.loads(out or "[]"):
        names = [n for n in image.get("Names") or [] if n.startswith(REPOSITORY + "/")]
        key = cache_key((image.get("Labels") or {}).get(LABEL))
        for name in names:
            listed.append(Listed(name, image.get("Id", ""), key, int(image.get("Size", 0))))
    return listed


def remove(reference: str, cache: Path | None = None) -> Listed:
    """Remove one image tuxai built (by name or ID) and its cached layout.

    Raises:
        UsageError: no image tuxai built has that name or ID.
    """
    match = [i for i in list_images() if reference in (i.reference, i.image_id) or i.image_id.startswith(reference)]
    if not match:
        raise UsageError(f"no image built by tuxai is called {reference!r}", hint="tuxai image ls")
    image = match[0]
    _run(["podman", "rmi", "--force", image.image_id], "podman rmi")
    if cache_key(image.key):  # the cache touched only at a key's own name in it
        with contextlib.suppress(OSError):
            shutil.rmtree((cache or cache_root()) / image.key)
        ((cache or cache_root()) / f"{image.key}.lock").unlink(missing_ok=True)
    return image
