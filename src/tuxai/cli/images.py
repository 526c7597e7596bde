"""``tuxai image build / ls / rm``: images from inputs tuxai hashes (``tuxai.images``; docs/containers.md)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tuxai.cli.common import DebugOption, guard

if TYPE_CHECKING:
    from tuxai.images.build import Built
    from tuxai.images.recipe import Recipe

image_app = typer.Typer(help="Build container images from hashed inputs; list and remove them.", no_args_is_help=True)


@image_app.command("build")
def build_command(
    suite: Annotated[str, typer.Option("--suite", help="The Debian suite.", metavar="SUITE")] = "bookworm",
    package: Annotated[
        list[str] | None,
        typer.Option("--package", "-p", help="An apt package (repeatable; default python3-minimal).", metavar="PKG"),
    ] = None,
    requirements: Annotated[
        Path | None,
        typer.Option("--requirements", "-r", help="requirements.txt or uv.lock (with its pyproject).", metavar="FILE"),
    ] = None,
    file: Annotated[
        list[str] | None, typer.Option("--file", help="Copy a file in (repeatable).", metavar="SRC:DEST")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="localhost/tuxai/NAME:<key>.", metavar="NAME")] = "image",
    wheel: Annotated[
        list[Path] | None,
        typer.Option("--wheel", help="A local wheel, a layer over the rest (its dependencies: -r).", metavar="FILE"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Build (or find in the cache) the image of these inputs; print its name."""
    raise typer.Exit(
        guard(lambda: run_build(suite, package, requirements, file or [], name, as_json, wheel or []), debug)
    )


def run_build(
    suite: str,
    packages: list[str] | None,
    requirements: Path | None,
    files: list[str],
    name: str,
    as_json: bool,
    wheels: list[Path] | None = None,
) -> int:
    """Hash the inputs, build or find the image, print it; the exit status.

    Raises:
        UsageError: a bad input (named); ImageBuildError: mmdebstrap or podman failed.
    """
    from tuxai.errors import UsageError

    specs: dict[str, Path] = {}
    for item in files:
        source, sep, dest = item.rpartition(":")
        if not sep or not source or not Path(source).is_file():
            raise UsageError(f"--file {item!r}: give SRC:DEST with SRC an existing file", hint="--file app.py:/app.py")
        specs[dest] = Path(source)
    if requirements is not None and not requirements.is_file():
        raise UsageError(f"--requirements {requirements}: no such file")
    for wheel in wheels or []:
        if not wheel.is_file():
            raise UsageError(f"--wheel {wheel}: no such file", hint="build it first, e.g. make wheel")
    with tempfile.TemporaryDirectory(prefix="tuxai-image-") as staging:
        built, recipe = _build_from_copies(Path(staging), suite, packages, requirements, specs, name, wheels or [])
    if as_json:
        print(json.dumps({"reference": built.reference, "id": built.image_id, "key": recipe.key, "cache": built.cache,
                          "seconds": round(built.seconds, 3)}))  # fmt: skip
    else:
        print(f"{built.reference} {built.image_id[:12]} ({built.cache}, {built.seconds:.1f} s)")
    return 0


def _build_from_copies(
    staging: Path,
    suite: str,
    packages: list[str] | None,
    requirements: Path | None,
    specs: dict[str, Path],
    name: str,
    wheels: list[Path],
) -> tuple[Built, Recipe]:
    """Each input read once into ``staging`` (``images.inputs``), the recipe keyed by and built from the copies (U3)."""
    from tuxai.images.build import build
    from tuxai.images.inputs import copy_in
    from tuxai.images.recipe import ImageFile, Recipe, check_recipe

    for part in ("files", "requirements", "wheels"):
        (staging / part).mkdir()
    copies = {d: copy_in(s, staging / "files", "--file", str(i)) for i, (d, s) in enumerate(specs.items())}
    lock = copy_in(requirements, staging / "requirements", "--requirements") if requirements else None
    project = requirements.parent / "pyproject.toml" if requirements and requirements.name == "uv.lock" else None
    if project is not None and project.is_file():
        copy_in(project, staging / "requirements", "--requirements")  # uv export reads it beside the lock
    local = [copy_in(w, staging / "wheels", "--wheel") for w in wheels]
    recipe = check_recipe(
        Recipe(
            suite=suite,
            packages=tuple(packages or ("python3-minimal",)),
            requirements_sha256=lock[1] if lock else "",
            files=tuple(ImageFile(d, sha) for d, (_, sha) in copies.items()),
            name=name,
            wheels=tuple(ImageFile(w.name, sha) for w, sha in local),
        )
    )
    staged = {d: c for d, (c, _) in copies.items()}
    built = build(recipe, staged, lock[0] if lock else None, wheels=[w for w, _ in local])
    return built, recipe


@image_app.command("ls")
def ls_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the images as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """The images tuxai built: name, ID, size."""

    def action() -> int:
        from tuxai.images.build import list_images

        images = list_images()
        if as_json:
            print(json.dumps([{"reference": i.reference, "id": i.image_id, "key": i.key, "size_bytes": i.size_bytes}
                              for i in images]))  # fmt: skip
        for image in [] if as_json else images:
            print(f"{image.reference}  {image.image_id[:12]}  {image.size_bytes / 1e6:.0f} MB")
        return 0

    raise typer.Exit(guard(action, debug))


@image_app.command("rm")
def rm_command(
    reference: Annotated[str, typer.Argument(help="A name or ID from tuxai image ls.", metavar="IMAGE")],
    debug: DebugOption = False,
) -> None:
    """Remove an image tuxai built, and its cached layout."""

    def action() -> int:
        from tuxai.images.build import remove

        print(f"removed {remove(reference).reference}")
        return 0

    raise typer.Exit(guard(action, debug))
