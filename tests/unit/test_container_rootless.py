"""Issue 19, rootless podman (a user's own daemon): the subordinate ids it needs, and what the doctor says
about it here (tests/containers runs a rootless container job for real)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tuxai.doctor.container_checks import check_rootless
from tuxai.doctor.findings import Severity
from tuxai.hardware.containers import ContainerHost, subid_ranges
from tuxai.model.container import has_subid_range


def test_I19_a_subordinate_range_is_the_users_by_name_or_uid_and_large_enough() -> None:
    text = "# ranges\nana:100000:65536\n1001:200000:65536\nbob:300000:10\n"
    assert has_subid_range(text, "ana", 1000) and has_subid_range(text, "cy", 1001)
    assert not has_subid_range(text, "bob", 1002)  # 10 ids: an image's files owned by uid 42 … cannot be unpacked
    assert not has_subid_range(text, "dan", 1003) and not has_subid_range("", "ana", 1000)


def test_I19_subid_ranges_reads_both_files(tmp_path: Path) -> None:
    (tmp_path / "subuid").write_text("ana:100000:65536\n")
    (tmp_path / "subgid").write_text("")
    assert subid_ranges("ana", (tmp_path / "subuid", tmp_path / "subgid")) == (True, False)
    assert subid_ranges("ana", (tmp_path / "none", tmp_path / "subuid")) == (False, True)


def test_I19_the_doctor_says_what_a_rootless_podman_lacks_with_the_remedy() -> None:
    base = ContainerHost(podman_version="4.3.1", runtimes=("runc",), cgroup_version=1, rootless_user="ana")
    (missing,) = check_rootless(replace(base, subids=(True, False)))
    assert (
        missing.severity is Severity.WARN and "/etc/subgid" in missing.message and "/etc/subuid" not in missing.message
    )
    assert missing.remedy.startswith("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ana")
    (v1,) = check_rootless(base)
    assert v1.severity is Severity.WARN and "ignores a container's limits" in v1.message
    (v2,) = check_rootless(replace(base, cgroup_version=2))
    assert v2.severity is Severity.OK
    assert not list(check_rootless(replace(base, rootless_user="")))  # root's podman
