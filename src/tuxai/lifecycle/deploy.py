"""Deploy by alias: ``tuxai serve models:/NAME@ALIAS`` serves the version the alias names and follows it.

The follower keeps a serving repository of one model (``<dir>/NAME/<version>/``, the registry's
version numbers) and its ``config.yaml`` with ``version_policy: {specific: [N]}``. When the alias
moves, the new version is fetched (ONNX first, then TorchScript / torch.export, then SavedModel; a
``drift-reference.json`` among its artifacts comes along) into a hidden directory renamed into place,
then the policy names it: the server's watch swaps it in with no failed request, as for any new
version directory. Moving the alias back is the same swap, back. The served version is tagged in the
registry (``tuxai.serving``: where it serves); the tag leaves with the server. Versions are pruned: the
``KEEP_VERSIONS`` served last stay (the one served and the ones before it, for a quick roll back), the
older ones are removed.

Serving never imports this: the server sees a repository directory change, as it would by hand.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuxai.errors import UsageError
from tuxai.lifecycle.mlflow_runs import load_mlflow
from tuxai.lifecycle.tracking import tracking_dir, tracking_uri

log = logging.getLogger("tuxai.lifecycle")
_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[A-Za-z0-9_.-]+)$")
# What a version's artifacts may hold, in the order tried: the first found is served.
MODEL_FILES = ("*.onnx", "*.pt", "*.pt2", "saved_model.pb")
TAG = "tuxai.serving"
KEEP_VERSIONS = 3  # the version served and the two served before it; at least 2 (the one just left may still answer)


@dataclass(frozen=True)
class ModelAlias:
    """``models:/NAME@ALIAS``, read."""

    name: str
    alias: str

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}"


def parse_model_uri(text: str) -> ModelAlias:
    """``models:/digits@champion`` → ``ModelAlias("digits", "champion")``.

    Raises:
        UsageError: not that form (a version number instead of an alias included; a NAME with ``/``, a NAME or
            ALIAS of ``.`` or ``..``).
    """
    found = _URI.match(text)
    if found is None or {found["name"], found["alias"]} & {".", ".."}:  # never a path's . or .. (H2)
        raise UsageError(f"{text!r} is not a registry alias", "serve models:/NAME@ALIAS, e.g. models:/digits@champion")
    return ModelAlias(found["name"], found["alias"])


def is_model_uri(text: str) -> bool:
    """Whether a serve target names the registry (``models:/…``) rather than a file."""
    return text.startswith("models:/")


def serving_dir(alias: ModelAlias, env: Mapping[str, str] | None = None) -> Path:
    """Where the follower keeps the model's versions: ``<tracking_dir>/serving/NAME@ALIAS``."""
    return tracking_dir(env) / "serving" / f"{alias.name}@{alias.alias}"


def model_file(tree: Path) -> Path:
    """The file (or SavedModel directory) to serve among a version's downloaded artifacts.

    Raises:
        UsageError: none of ``MODEL_FILES`` is there.
    """
    for pattern in MODEL_FILES:
        found = sorted(tree.rglob(pattern))
        if found:
            return found[0].parent if pattern == "saved_model.pb" else found[0]
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())[:10]
    raise UsageError(
        f"no servable model among the version's artifacts: {', '.join(names) or 'none'}",
        "log an ONNX file (model.onnx), a TorchScript/torch.export .pt or a SavedModel with the version",
    )


def _served_name(source: Path) -> str:
    """The name the repository serves a fetched model under (serving.models.FILES)."""
    if source.is_dir():
        return "model.savedmodel"
    return "model.onnx" if source.suffix == ".onnx" else "model.pt"


class AliasFollower:
    """Keeps ``root/NAME`` serving the version ``alias`` names; ``where`` says where it serves (the tag)."""

    def __init__(
        self,
        alias: ModelAlias,
        root: Path,
        where: Callable[[], str],
        env: Mapping[str, str] | None = None,
        keep: int = KEEP_VERSIONS,
    ):
        mlflow = load_mlflow()
        self.alias, self.where, self.uri, self.keep = alias, where, tracking_uri(env), keep
        self.client = mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self._download = mlflow.artifacts.download_artifacts
        self._registry_error: type[Exception] = mlflow.exceptions.MlflowException
        self.directory = root / alias.name
        self.current: int | None = None
        self._tagged = ""
        self.stop = threading.Event()

    def sync(self) -> int:
        """Serve the version the alias names now (fetched if new); its number.

        Raises:
            UsageError: no such model or alias in the registry, or a version with nothing servable.
        """
        try:
            version: Any = self.client.get_model_version_by_alias(self.alias.name, self.alias.alias)
        except self._registry_error as exc:  # no such model or alias: MLflow's message says which
            raise UsageError(f"{self.alias}: {exc}", f"see the registry at {self.uri}") from None
        number = int(version.version)
        if number == self.current:
            if self.where() != self._tagged:  # the server's address, known once it listens
                self._tag(number, self.where())
            return number
        target = self.directory / str(number)
        if not target.exists():
            self._fetch(number, target)
        _write_policy(self.directory / "config.yaml", number)
        os.utime(target)  # served now: the prune orders versions by when they were last served
        prune_versions(self.directory, number, self.keep)
        self._tag(self.current, None)
        self._tag(number, self.where())
        log.info("%s: version %s → %s", self.alias, self.current or "none", number)
        self.current = number
        return number

    def _fetch(self, number: int, target: Path) -> None:
        """Download version ``number``'s artifacts and place its model (and drift reference) at ``target``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.directory, prefix=".fetch-") as scratch:
            uri = self.client.get_model_version_download_uri(self.alias.name, str(number))  # where its files are
            downloaded = Path(self._download(artifact_uri=uri, dst_path=scratch, tracking_uri=self.uri))
            source = model_file(downloaded)
            staged = Path(scratch) / "version"
            staged.mkdir()
            shutil.move(str(source), staged / _served_name(source))
            references = sorted(downloaded.rglob("drift-reference.json"))
            if references:
                shutil.move(str(references[0]), staged / "drift-reference.json")
            os.rename(staged, target)  # the server's watch sees it whole, never half-written

    def _tag(self, number: int | None, where: str | None) -> None:
        if number is None:
            return
        if where is None:
            self.client.delete_model_version_tag(self.alias.name, str(number), TAG)
        else:
            self.client.set_model_version_tag(self.alias.name, str(number), TAG, where)
            self._tagged = where

    def follow(self, period_s: float = 0.5) -> None:
        """Sync every ``period_s`` until ``stop`` is set; then the served version's tag is removed."""
        while not self.stop.wait(period_s):
            try:
                self.sync()
            except (UsageError, OSError, self._registry_error) as exc:  # said, tried again next period
                log.error("%s: cannot follow the alias: %s", self.alias, exc)
        try:
            self._tag(self.current, None)
        except (OSError, self._registry_error) as exc:
            log.error("%s: cannot remove the %s tag: %s", self.alias, TAG, exc)


def prune_versions(directory: Path, current: int, keep: int = KEEP_VERSIONS) -> list[int]:
    """Remove the version directories of ``directory`` but the ``keep`` served last (by their mtime, which
    ``sync`` sets when it serves one; ``current`` always stays, and at least one before it); the removed.

    A version leaves whole: renamed to a hidden name first, so the server's watch never sees half of one.
    """
    versions = [p for p in directory.iterdir() if p.name.isdigit() and p.is_dir()]
    others = sorted((p for p in versions if int(p.name) != current), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in others[max(1, keep - 1) :]:
        hidden = directory / f".prune-{old.name}-{os.getpid()}"
        os.rename(old, hidden)
        shutil.rmtree(hidden, ignore_errors=True)
        removed.append(int(old.name))
    if removed:
        log.info("%s: versions %s pruned", directory.name, ", ".join(map(str, sorted(removed))))
    return sorted(removed)


def _write_policy(path: Path, number: int) -> None:
    """``config.yaml`` naming version ``number``, replaced atomically (the watch never reads half a file)."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(f"version_policy: {{specific: [{number}]}}\n")
    os.replace(scratch, path)
