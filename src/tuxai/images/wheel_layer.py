"""``tuxai image build --wheel``: local wheels as one more layer over the image of the other inputs.

A wheel of a tree that changes often (tuxai's own, for a serving image) would make the whole
image cold at each change: minutes of mmdebstrap and pip. So the other inputs make a base layout
as any recipe does (cached by their key), and the wheels go on top as a second layer written
here, in seconds, with no container run: each wheel's files unpacked into the base's
``/opt/venv`` site-packages (``NAME.data/purelib``, ``platlib`` there too, ``scripts`` into
``/opt/venv/bin``), installed without their dependencies — those come from ``--requirements``.
The layer is reproducible (sorted, owned by root, the recipe's epoch as every time), so the same
base and wheels give the same image ID.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuxai.errors import UsageError
from tuxai.images.recipe import SOURCE_DATE_EPOCH, Recipe, canonical_bytes, oci_config, oci_manifest

SITE = re.compile(r"^\.?/?(opt/venv/lib/python3\.[0-9]+/site-packages)/?$")
DATA = re.compile(r"^[^/]+\.data/(purelib|platlib|scripts)/(.+)$")


def base_layer(layout: Path) -> tuple[str, dict[str, Any]]:
    """The one layer (its sha256) and the config of a layout ``build`` wrote."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_bytes())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].removeprefix("sha256:")).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"].removeprefix("sha256:")).read_bytes())
    return manifest["layers"][-1]["digest"].removeprefix("sha256:"), config


def site_packages(layer: Path) -> str:
    """The venv's site-packages in a base layer (``opt/venv/lib/python3.X/site-packages``).

    Raises:
        UsageError: the base has no ``/opt/venv`` (``--wheel`` goes into the venv ``--requirements`` makes).
    """
    with tarfile.open(layer) as tar:
        for member in tar:
            found = SITE.match(member.name)
            if found and member.isdir():
                return found.group(1)
    raise UsageError(
        "--wheel goes into the image's /opt/venv, and these inputs make none",
        hint="give --requirements too (the wheel's dependencies: it is installed without them)",
    )


def _entries(wheel: Path, site: str) -> list[tuple[str, bytes, int]]:
    """(path in the image, content, mode) of each file of ``wheel``."""
    entries = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            if name.startswith("/") or ".." in name.split("/"):
                raise UsageError(f"--wheel {wheel.name}: {name!r} would land outside the venv")
            data = DATA.match(name)
            if data and data.group(1) == "scripts":
                path, mode = f"opt/venv/bin/{data.group(2)}", 0o755
            elif data:
                path, mode = f"{site}/{data.group(2)}", 0o644
            elif name.split("/", 1)[0].endswith(".data"):
                raise UsageError(f"--wheel {wheel.name}: {name} (headers or data files) is not installed by tuxai")
            else:
                path, mode = f"{site}/{name}", 0o644
            entries.append((path, archive.read(info), mode))
        dist_info = next((n.split("/")[0] for n in archive.namelist() if n.split("/")[0].endswith(".dist-info")), "")
    if dist_info:
        entries.append((f"{site}/{dist_info}/INSTALLER", b"tuxai\n", 0o644))
    return entries


def write_layer(wheels: Sequence[Path], site: str, out: Path) -> tuple[str, int]:
    """The wheels' files as one reproducible layer tar at ``out``: its sha256 and size."""
    files = sorted((e for w in wheels for e in _entries(w, site)), key=lambda e: e[0])
    directories = sorted({str(p) for path, _, _ in files for p in Path(path).parents if str(p) != "."})
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, SOURCE_DATE_EPOCH
            tar.addfile(info)
        for path, data, mode in files:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, SOURCE_DATE_EPOCH
            tar.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return digest, out.stat().st_size


def write_wheel_layout(layout: Path, recipe: Recipe, base: Path, wheels: Sequence[Path]) -> None:
    """The layout of ``recipe`` (with wheels): the base layout's layer (linked, not copied) and the wheels' layer."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    lower, base_config = base_layer(base)
    if not (blobs / lower).exists():
        os.link(base / "blobs" / "sha256" / lower, blobs / lower)
    tmp = layout / "wheels.tar"
    upper = write_layer(wheels, site_packages(blobs / lower), tmp)
    os.replace(tmp, blobs / upper[0])
    config = oci_config(recipe, lower, base_config["architecture"], upper[0])
    config_blob = canonical_bytes(config)
    config_ref = hashlib.sha256(config_blob).hexdigest(), len(config_blob)
    (blobs / config_ref[0]).write_bytes(config_blob)
    manifest = oci_manifest(config_ref, (lower, (blobs / lower).stat().st_size), upper)
    manifest_blob = canonical_bytes(manifest)
    digest = hashlib.sha256(manifest_blob).hexdigest()
    (blobs / digest).write_bytes(manifest_blob)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": manifest["mediaType"], "digest": f"sha256:{digest}", "size": len(manifest_blob)}]}  # fmt: skip
    (layout / "index.json.tmp").write_bytes(canonical_bytes(index))
    os.replace(layout / "index.json.tmp", layout / "index.json")  # last: the layout is complete
