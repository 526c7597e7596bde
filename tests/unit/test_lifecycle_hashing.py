"""Content hashes of code, environments and artifacts, the cache key, and the artifact store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tuxai.errors import UsageError
from tuxai.lifecycle.hashing import code_files, dir_hash, env_hash, step_key, tree_hash
from tuxai.lifecycle.records import Records, pipelines_dir


def test_a_tree_hash_follows_content_and_names_not_mtimes(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("print(1)\n")
    first = tree_hash(tmp_path, ["a.py"])
    os.utime(tmp_path / "a.py", (1, 1))
    assert tree_hash(tmp_path, ["a.py"]) == first
    (tmp_path / "a.py").write_text("print(2)\n")
    assert tree_hash(tmp_path, ["a.py"]) != first
    (tmp_path / "a.py").write_text("print(1)\n")
    assert tree_hash(tmp_path, ["a.py"]) == first
    (tmp_path / "a.py").rename(tmp_path / "b.py")
    assert tree_hash(tmp_path, ["b.py"]) != first


def test_a_directory_hash_covers_nested_files_and_links(tmp_path: Path) -> None:
    (tmp_path / "d/sub").mkdir(parents=True)
    (tmp_path / "d/sub/w.bin").write_bytes(b"\x00\x01")
    empty = dir_hash(tmp_path / "missing")
    first = dir_hash(tmp_path / "d")
    assert first != empty
    (tmp_path / "d/link").symlink_to("sub/w.bin")
    assert dir_hash(tmp_path / "d") != first


def test_code_is_code_then_git_then_the_command(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("x")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/util.py").write_text("y")
    assert code_files(("train.py", "lib"), ["python", "train.py"], tmp_path, "s") == (
        "code",
        ["train.py", "lib/util.py"],
    )
    assert code_files((), ["python", "-u", "train.py", "--lr", "1"], tmp_path, "s") == ("command", ["train.py"])
    with pytest.raises(UsageError, match=r"s: code nope\.py does not exist"):
        code_files(("nope.py",), [], tmp_path, "s")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / "out.log").write_text("ignored")
    rule, files = code_files((), ["python", "train.py"], tmp_path, "s")
    assert rule == "git" and sorted(files) == [".gitignore", "lib/util.py", "train.py"]


def test_an_environment_is_its_file_with_the_lockfile_beside_it(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert env_hash("", tmp_path) == ""
    alone = env_hash("requirements.txt", tmp_path)
    (tmp_path / "uv.lock").write_text("numpy==2.0\n")
    locked = env_hash("requirements.txt", tmp_path)
    assert locked != alone
    (tmp_path / "uv.lock").write_text("numpy==2.1\n")
    assert env_hash("requirements.txt", tmp_path) != locked
    assert env_hash("torch", tmp_path) != env_hash("jax", tmp_path)  # named environments by name


def test_the_cache_key_ignores_name_and_workdir_but_not_what_changes_the_result() -> None:
    fields = {"command": "python train.py", "gpus": 1}
    key = step_key(fields, "c", "e", {"data": "h1"})
    assert step_key({**fields, "workdir": "/elsewhere"}, "c", "e", {"data": "h1"}) == key
    assert step_key({"command": ["python", "train.py"], "gpus": 1}, "c", "e", {"data": "h1"}) == key
    for other in (
        step_key({**fields, "gpus": 2}, "c", "e", {"data": "h1"}),
        step_key({**fields, "time": 5}, "c", "e", {"data": "h1"}),
        step_key(fields, "c2", "e", {"data": "h1"}),
        step_key(fields, "c", "e2", {"data": "h1"}),
        step_key(fields, "c", "e", {"data": "h2"}),
    ):
        assert other != key


def test_the_store_keeps_content_once_read_only_with_its_lineage(tmp_path: Path) -> None:
    records = Records(tmp_path / "pipelines")
    made = tmp_path / "out"
    made.mkdir()
    (made / "model.txt").write_text("6")
    digest = records.store(made, {"run": 1, "step": "train"})
    assert digest == dir_hash(made) and records.lineage(digest)["step"] == "train"
    again = tmp_path / "again"
    again.mkdir()
    (again / "model.txt").write_text("6")
    assert records.store(again, {"run": 2, "step": "train"}) == digest
    assert records.lineage(digest)["run"] == 1  # the first maker's
    target = tmp_path / "run2/model"
    records.materialize(digest, target)
    assert (target / "model.txt").read_text() == "6"
    assert (target / "model.txt").stat().st_mode & 0o222 == 0
    records.remember("k", 1, "train", 7, {"model": digest})
    assert records.cached("k") == {"run": 1, "step": "train", "job": 7, "outputs": {"model": digest}}
    assert records.cached("other") is None


def test_runs_are_numbered_and_read_back(tmp_path: Path) -> None:
    records = Records(tmp_path)
    one = records.new_run("p", "/p.yaml", ("a", "b"), 10.0)
    two = records.new_run("p", "/p.yaml", ("a",), 11.0)
    assert (one.id, two.id) == (1, 2)
    assert records.load(1) == one and records.last_run("/p.yaml") == two and records.last_run("/q.yaml") is None
    with pytest.raises(UsageError, match="no pipeline run 9"):
        records.load(9)
    assert pipelines_dir({"XDG_DATA_HOME": "/x"}) == Path("/x/tuxai/pipelines")
    assert pipelines_dir({"HOME": "/home/u"}) == Path("/home/u/.local/share/tuxai/pipelines")


def test_storing_an_output_that_links_another_file_leaves_that_file_writable(tmp_path: Path) -> None:
    records = Records(tmp_path / "pipelines")
    elsewhere = tmp_path / "notes.txt"
    elsewhere.write_text("mine")
    made = tmp_path / "out"
    made.mkdir()
    os.link(elsewhere, made / "notes.txt")  # a step's output that is a hard link to another file of the user's
    digest = records.store(made, {"run": 1})
    assert elsewhere.stat().st_mode & 0o200  # still writable: the store copied it
    assert (tmp_path / "pipelines/artifacts" / digest / "notes.txt").stat().st_mode & 0o222 == 0
