"""Issue 19, the doctor on containers: podman, a runtime that works on these cgroups, CDI specs
consistent with the GPUs seen (each finding with its remedy)."""

from __future__ import annotations

from pathlib import Path

from tuxai.doctor.container_checks import container_findings
from tuxai.doctor.findings import Severity
from tuxai.hardware.containers import ContainerHost, cgroup_mode
from tuxai.model.container import CdiSpec
from tuxai.model.gpu import Gpu, MigDevice, Vendor

GPUS = [Gpu(Vendor.NVIDIA, 0, "L4", uuid="GPU-aaa"), Gpu(Vendor.NVIDIA, 1, "L4", uuid="GPU-bbb")]
NVIDIA = CdiSpec("nvidia.com/gpu", ("0", "1", "GPU-aaa", "GPU-bbb", "all"), "/etc/cdi/nvidia.yaml")
HOST = ContainerHost("4.3.1", ("crun", "runc"), 1, True, (NVIDIA,))


def _by_id(host: ContainerHost, gpus: list[Gpu] = GPUS) -> dict[str, tuple[Severity, str, str]]:
    return {f.id: (f.severity, f.message, f.remedy) for f in container_findings(host, gpus)}


def test_I19_doctor_names_the_runtime_that_works_on_a_hybrid_host() -> None:
    found = _by_id(HOST)
    assert found["containers.podman"][0] is Severity.OK
    assert "runtime runc" in found["containers.podman"][1] and "crun refuses a hybrid" in found["containers.podman"][1]
    assert found["containers.cdi"][0] is Severity.OK
    v2 = _by_id(ContainerHost("5.4.2", ("crun", "runc"), 2, False, (NVIDIA,)))
    assert "runtime crun" in v2["containers.podman"][1] and "refuses" not in v2["containers.podman"][1]


def test_I19_doctor_without_podman_or_a_runtime_says_what_to_install() -> None:
    assert "apt-get install" in _by_id(ContainerHost())["containers.podman"][2]
    found = _by_id(ContainerHost("4.3.1", (), 1, True, (NVIDIA,)))
    assert found["containers.runtime"][0] is Severity.WARN and found["containers.runtime"][2] == "apt-get install runc"


def test_I19_doctor_finds_a_missing_or_stale_cdi_spec() -> None:
    none = _by_id(ContainerHost("4.3.1", ("runc",), 1, True))
    assert (
        none["containers.cdi_missing"][0] is Severity.WARN
        and "nvidia-ctk cdi generate" in none["containers.cdi_missing"][2]
    )
    old = CdiSpec("nvidia.com/gpu", ("GPU-aaa", "GPU-old"), "/etc/cdi/nvidia.yaml")  # written before a GPU swap
    stale = [
        f
        for f in container_findings(ContainerHost("4.3.1", ("runc",), 1, True, (old,)), GPUS)
        if f.id == "containers.cdi_stale"
    ]
    assert [("GPU-bbb" in f.message, "GPU-old" in f.message) for f in stale] == [(True, False), (False, True)]
    mig = [Gpu(Vendor.NVIDIA, 0, "A100", uuid="GPU-m", mig_devices=(MigDevice(0, "1g.10gb", None, None, "MIG-1"),))]
    assert "containers.cdi" in _by_id(
        ContainerHost("4.3.1", ("runc",), 1, True, (CdiSpec("nvidia.com/gpu", ("MIG-1",)),)), mig
    )


def test_I19_doctor_names_an_unreadable_cdi_spec_and_is_quiet_without_gpus() -> None:
    found = _by_id(ContainerHost("4.3.1", ("runc",), 1, True, (), ("/etc/cdi/x.yaml: not JSON or YAML",)), [])
    assert set(found) == {"containers.podman", "containers.cdi_unreadable"}


def test_I19_cgroup_mode_tells_hybrid_v1_from_v2(tmp_path: Path) -> None:
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.controllers").write_text("memory pids")
    for name in ("memory", "unified"):
        (tmp_path / "hybrid" / name).mkdir(parents=True)
    (tmp_path / "v1" / "pids").mkdir(parents=True)
    assert [cgroup_mode(tmp_path / n) for n in ("v2", "hybrid", "v1", "none")] == [
        (2, False),
        (1, True),
        (1, False),
        (0, False),
    ]
