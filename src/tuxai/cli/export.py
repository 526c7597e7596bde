"""``tuxai export k8s JOB_FILE [-o DIR]``: the job file as a Kubernetes Job or JobSet (``tuxai.k8s``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tuxai.cli.common import DebugOption, guard

export_app = typer.Typer(help="Write a job file in another engine's terms.", no_args_is_help=True)


@export_app.command("k8s")
def k8s(
    job_file: Annotated[Path, typer.Argument(help="A YAML job file with an image: field.", metavar="JOB_FILE")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write DIR/NAME.yaml (default: print the YAML).", metavar="DIR"),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """A batch/v1 Job (one node) or a JobSet (nodes: 2+) that Kueue admits, checked offline."""
    raise typer.Exit(guard(lambda: run_export_k8s(job_file, out), debug))


def run_export_k8s(job_file: Path, out: Path | None) -> int:
    """Read, translate, validate (when kubernetes-validate is installed), write; returns the exit status.

    Raises:
        UsageError: an unreadable or invalid job file, no image, or a manifest that does not validate.
    """
    from tuxai.errors import UsageError
    from tuxai.k8s.manifests import export_manifest, to_yaml
    from tuxai.k8s.validate import validate
    from tuxai.model.jobfile import load_job_file

    if not job_file.is_file():
        raise UsageError(f"job file {job_file} does not exist", hint="check the path")
    manifest = export_manifest(load_job_file(job_file.read_text(), str(job_file)), str(job_file))
    try:
        validate(manifest)
    except UsageError as exc:
        if "needs kubernetes-validate" not in exc.message:
            raise
        print(f"note: not validated offline ({exc.message}: {exc.hint})", file=sys.stderr)
    text = to_yaml(manifest)
    if out is None:
        sys.stdout.write(text)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{manifest['metadata']['name']}.yaml"
    path.write_text(text)
    print(f"{manifest['kind']} {manifest['metadata']['name']} → {path}")
    return 0
