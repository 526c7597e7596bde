"""An image's recipe: the inputs tuxai hashes (a Debian suite, apt packages, Python requirements,
files), its key, and the OCI config and manifest written around the root file system.

Pure. The key is the sha256 of the recipe's canonical JSON (sorted packages, the
requirements' and files' contents hashed): the same inputs give the same key, so the second
build is a cache hit, and one changed package gives another key. The OCI config carries
no build time (``created`` is the recipe's fixed epoch), so the same root file system gives
the same image ID.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from tuxai.errors import UsageError

SOURCE_DATE_EPOCH = 0
"""The time written into the image (files and config): a build's time would change its digest."""

LABEL = "dev.tuxai.inputs"
REPOSITORY = "localhost/tuxai"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$")
_SUITE = re.compile(r"^[a-z][a-z0-9-]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_WHEEL = re.compile(r"^[A-Za-z0-9_.+!-]+-[A-Za-z0-9_.+!-]+\.whl$")


@dataclass(frozen=True)
class ImageFile:
    """A file copied into the image: where it goes and the sha256 of its content."""

    dest: str
    sha256: str


@dataclass(frozen=True)
class Recipe:
    """What an image is built from (``tuxai image build``)."""

    suite: str = "bookworm"
    packages: tuple[str, ...] = ("python3-minimal",)
    requirements_sha256: str = ""  # a requirements.txt or uv lock, by content; "": none
    files: tuple[ImageFile, ...] = ()
    name: str = "image"  # the repository name under localhost/tuxai/
    wheels: tuple[ImageFile, ...] = ()  # local wheels, a layer over the rest (file name, sha256; images.wheel_layer)

    def canonical(self) -> dict[str, Any]:
        """The inputs that make the image, in one order (what the key hashes; the name is not one)."""
        inputs: dict[str, Any] = {
            "suite": self.suite,
            "packages": sorted(set(self.packages)),
            "requirements": self.requirements_sha256,
            "files": sorted([f.dest, f.sha256] for f in self.files),
        }
        if self.wheels:  # only when given: the keys of images built before wheels were an input hold
            inputs["wheels"] = sorted([w.dest, w.sha256] for w in self.wheels)
        return inputs

    @property
    def key(self) -> str:
        """sha256 of the canonical inputs.

        >>> Recipe(packages=("b", "a")).key == Recipe(packages=("a", "b", "a")).key
        True
        """
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def reference(self) -> str:
        """The image's local name: ``localhost/tuxai/<name>:<first 16 of the key>``."""
        return f"{REPOSITORY}/{self.name}:{self.key[:16]}"


def check_recipe(recipe: Recipe) -> Recipe:
    """The recipe, or one clear error naming the bad input.

    Raises:
        UsageError: a suite, package, name or file destination that cannot be right.
    """
    if not _SUITE.match(recipe.suite):
        raise UsageError(f"--suite {recipe.suite!r} is not a Debian suite name", hint="e.g. bookworm or trixie")
    for package in recipe.packages:
        if not _PACKAGE.match(package):
            raise UsageError(f"--package {package!r} is not a Debian package name", hint="e.g. python3-numpy")
    if not _NAME.match(recipe.name):
        raise UsageError(f"--name {recipe.name!r}: lower-case letters, digits, '.', '_' or '-'", hint="e.g. train")
    for item in recipe.files:
        if not item.dest.startswith("/") or ".." in item.dest.split("/"):
            raise UsageError(f"--file …:{item.dest}: the destination must be an absolute path without '..'")
    for wheel in recipe.wheels:
        if not _WHEEL.match(wheel.dest):
            raise UsageError(
                f"--wheel {wheel.dest!r} is not a wheel's file name", hint="e.g. dist/tuxai-0.1-py3-none-any.whl"
            )
    return recipe


def oci_config(recipe: Recipe, layer_sha256: str, architecture: str, wheels_sha256: str = "") -> dict[str, Any]:
    """The image's OCI config: its layer (and the wheels' layer over it), the recipe's key as a label, no build time."""
    env = ["PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    layers = [layer_sha256, *([wheels_sha256] if wheels_sha256 else [])]
    return {
        "created": "1970-01-01T00:00:00Z",
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": env, "Cmd": ["/bin/sh"], "Labels": {LABEL: recipe.key}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer}" for layer in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": f"tuxai image build {recipe.key}"}] * len(layers),
    }


def oci_manifest(config: tuple[str, int], *layers: tuple[str, int]) -> dict[str, Any]:
    """The manifest naming the config and the layers, lowest first (each as its sha256 and size)."""
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": f"sha256:{config[0]}", "size": config[1]},
        "layers": [{"mediaType": LAYER_TYPE, "digest": f"sha256:{digest}", "size": size} for digest, size in layers],
    }


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """A JSON document as the bytes its digest is taken of (sorted keys, no spaces)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
