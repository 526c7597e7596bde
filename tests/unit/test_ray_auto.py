"""``tuxai up --ray auto`` (issue 15, T1): the cluster RAY_ADDRESS names, else one clear error — never Ray's
``/tmp/ray/ray_current_cluster``, which any local user can write. (The tier's ``tuxai up --ray auto`` test
runs it on the real cluster, RAY_ADDRESS set.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tuxai.cluster.ray_nodes import resolve_address
from tuxai.errors import ClusterError


def test_E15_auto_takes_ray_address_first() -> None:
    assert resolve_address("auto", {"RAY_ADDRESS": "127.0.0.2:41000"}) == "127.0.0.2:41000"
    assert resolve_address("127.0.0.5:1", {"RAY_ADDRESS": "127.0.0.2:41000"}) == "127.0.0.5:1"


def test_E15_auto_with_no_cluster_anywhere_says_so() -> None:
    with pytest.raises(ClusterError) as nothing:
        resolve_address("auto", {"RAY_ADDRESS": "auto"})
    assert nothing.value.message == "--ray auto found no Ray cluster: RAY_ADDRESS is not set"
    assert "RAY_ADDRESS" in (nothing.value.hint or "")


def test_T1_ray_auto_never_reads_a_file_another_user_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file read answers with user B's head: ``auto`` without RAY_ADDRESS still refuses."""
    read: list[Path] = []

    def planted(self: Path, *args: object, **kwargs: object) -> str:
        read.append(self)
        return "127.0.0.66:6379\n"  # B's own Ray head

    monkeypatch.setattr(Path, "read_text", planted)
    monkeypatch.setattr(Path, "read_bytes", lambda self: planted(self).encode())
    with pytest.raises(ClusterError, match="RAY_ADDRESS is not set"):
        resolve_address("auto", {})
    assert read == []
