"""Doctor findings on real captures and on hand-set inventories."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import fixture_text
from tuxai.doctor import Severity, diagnose
from tuxai.doctor.cuda import driver_at_least, driver_requirement, version_tuple
from tuxai.doctor.framework_checks import expected_cuda_devices
from tuxai.hardware.hl_smi import parse_hl_smi
from tuxai.hardware.nvidia_smi import parse_nvidia_smi_xml
from tuxai.model import CpuTopology, Framework, Gpu, Host, Inventory, NumaNode, SystemFacts
from tuxai.model.gpu import Ecc, MigDevice, Vendor
from tuxai.model.system import DeviceNode

HOST = Host(hostname="box", kernel="6.1", distro="Debian", memory_total_bytes=64 * 1024**3)
CPU_1NODE = CpuTopology("cpu", 1, 8, 2, tuple(range(16)), (NumaNode(0, tuple(range(16))),))
CPU_2NODE = CpuTopology(
    "cpu", 2, 8, 1, tuple(range(16)), (NumaNode(0, tuple(range(8))), NumaNode(1, tuple(range(8, 16))))
)


def _inventory(gpus: tuple[Gpu, ...], **changes: object) -> Inventory:
    return replace(Inventory(host=HOST, cpu=CPU_1NODE, gpus=gpus), **changes)  # type: ignore[arg-type]


def _ids(inventory: Inventory) -> dict[str, Severity]:
    return {f.id: f.severity for f in diagnose(inventory).findings}


def _xml(name: str) -> tuple[Gpu, ...]:
    return parse_nvidia_smi_xml(fixture_text(f"nvidia-smi-xml/{name}")).gpus


def test_t4_busy_at_x8_and_persistence_off() -> None:
    report = diagnose(_inventory(_xml("tesla-t4-drv515.105.01.xml")))
    found = {f.id: f for f in report.findings}
    assert found["gpu.pcie_link_degraded"].severity is Severity.WARN
    assert "Gen3 x8 (max Gen3 x16)" in found["gpu.pcie_link_degraded"].message
    assert "full-width slot" in found["gpu.pcie_link_degraded"].remedy
    assert found["gpu.persistence_off"].severity is Severity.WARN
    assert "nvidia-persistenced" in found["gpu.persistence_off"].remedy
    assert report.exit_code == 0


def test_idle_a5000_link_is_reported_not_judged() -> None:
    ids = _ids(_inventory(_xml("rtx-a5000-x2-drv590.44.01-v13.xml")))
    assert ids["gpu.pcie_link_idle"] is Severity.OK
    assert "gpu.pcie_link_degraded" not in ids
    assert "gpu.persistence_off" not in ids  # persistence is on in that capture


def test_a100_mig_with_instances_is_fine_but_without_is_not() -> None:
    (gpu,) = _xml("a100-sxm4-80gb-mig-4x1g-drv535.54.03.xml")
    assert "gpu.mig_no_instances" not in _ids(_inventory((gpu,)))
    ids = _ids(_inventory((replace(gpu, mig_devices=()),)))
    assert ids["gpu.mig_no_instances"] is Severity.WARN
    ids = _ids(_inventory((replace(gpu, mig_pending=False),)))
    assert ids["gpu.mig_pending"] is Severity.WARN


def test_gaudi_uncorrectable_ecc_is_an_error() -> None:
    gpus = parse_hl_smi(fixture_text("hl-smi/gaudi2-hl225-x8-drv1.21.1.hl-smi-table.txt")).gpus
    report = diagnose(_inventory(gpus))
    ecc = [f for f in report.findings if f.id == "gpu.ecc_uncorrectable"]
    assert [f.subject for f in ecc] == ["GPU 0 (HL-225)", "GPU 6 (HL-225)"]
    assert "21 uncorrectable" in ecc[0].message and "176 uncorrectable" in ecc[1].message
    assert report.exit_code == 1


@pytest.mark.parametrize(
    ("ecc", "finding", "severity"),
    [
        (Ecc(retired_pages=3), "gpu.retired_pages", Severity.WARN),
        (Ecc(retired_pages=3, retired_pages_pending=True), "gpu.retired_pages_pending", Severity.ERROR),
        (Ecc(remapped_rows_failure=True), "gpu.row_remap_failure", Severity.ERROR),
        (Ecc(remapped_rows_pending=True), "gpu.row_remap_pending", Severity.WARN),
        (Ecc(aggregate_uncorrectable=2), "gpu.ecc_uncorrectable", Severity.ERROR),
    ],
)
def test_memory_health(ecc: Ecc, finding: str, severity: Severity) -> None:
    gpu = Gpu(Vendor.NVIDIA, 0, "NVIDIA A100-SXM4-80GB", ecc=ecc)
    assert _ids(_inventory((gpu,)))[finding] is severity


def test_thermal_throttle_warns_power_cap_does_not() -> None:
    hot = Gpu(Vendor.NVIDIA, 0, "GPU", throttle_reasons=("hw_thermal_slowdown", "sw_power_cap"))
    capped = Gpu(Vendor.NVIDIA, 1, "GPU", throttle_reasons=("sw_power_cap",), power_limit_w=300.0)
    ids = {(f.id, f.subject): f.severity for f in diagnose(_inventory((hot, capped))).findings}
    assert ids[("gpu.clocks_throttled", "GPU 0 (GPU)")] is Severity.WARN
    assert ids[("gpu.power_capped", "GPU 1 (GPU)")] is Severity.OK


def test_gpu_on_a_numa_node_without_cpus() -> None:
    cpu = CpuTopology("cpu", 1, 8, 1, tuple(range(8)), (NumaNode(0, tuple(range(8))), NumaNode(1, ())))
    gpu = Gpu(Vendor.NVIDIA, 0, "GPU", numa_node=1)
    assert _ids(_inventory((gpu,), cpu=cpu))["gpu.numa_node_without_cpus"] is Severity.WARN
    assert "gpu.numa_node_without_cpus" not in _ids(_inventory((replace(gpu, numa_node=0),), cpu=cpu))


def test_no_gpus_is_ok() -> None:
    assert _ids(_inventory(()))["gpu.none"] is Severity.OK


# --- frameworks -------------------------------------------------------------------------


def _nvidia(driver: str, count: int = 2) -> tuple[Gpu, ...]:
    return tuple(Gpu(Vendor.NVIDIA, i, "NVIDIA A100-SXM4-80GB", driver_version=driver) for i in range(count))


def _torch(cuda: str | None, devices: int) -> Framework:
    return Framework(
        "torch",
        True,
        "2.7.0",
        build_cuda=cuda,
        gpu_support=cuda is not None,
        devices=tuple(f"NVIDIA A100-SXM4-80GB #{i}" for i in range(devices)),
    )


def test_driver_older_than_the_cuda_family_is_an_error() -> None:
    # The T4 box runs driver 515.105.01; a CUDA 12.1 build needs ≥ 525.60.13 to run at all.
    gpus = _xml("tesla-t4-drv515.105.01.xml")
    report = diagnose(_inventory(gpus, frameworks=(_torch("12.1", 1),)))
    (finding,) = [f for f in report.findings if f.id == "framework.driver_too_old"]
    assert finding.severity is Severity.ERROR
    assert "CUDA 12.1" in finding.message and "530.30.02" in finding.message and "515.105.01" in finding.message
    assert report.exit_code == 1


def test_driver_within_the_family_but_below_the_release_warns() -> None:
    # 535.54.03 (the A100 capture) runs a CUDA 12.8 build through minor-version compatibility.
    ids = _ids(_inventory(_nvidia("535.54.03"), frameworks=(_torch("12.8", 2),)))
    assert ids["framework.driver_older_than_build"] is Severity.WARN
    assert "framework.driver_too_old" not in ids


def test_new_enough_driver_is_silent() -> None:
    ids = _ids(_inventory(_nvidia("590.44.01"), frameworks=(_torch("12.8", 2),)))
    assert not any(i.startswith("framework.") for i in ids)


def test_cpu_only_build_with_gpus_present() -> None:
    finding = next(
        f
        for f in diagnose(_inventory(_nvidia("590.44.01"), frameworks=(_torch(None, 0),))).findings
        if f.id == "framework.no_gpu_support"
    )
    assert finding.severity is Severity.WARN and "CPU-only" in finding.message and "NVIDIA" in finding.message


def test_cpu_only_build_without_gpus_is_fine() -> None:
    assert not any(i.startswith("framework.") for i in _ids(_inventory((), frameworks=(_torch(None, 0),))))


def test_fewer_devices_explains_why() -> None:
    system = SystemFacts(
        observed=True,
        visible_devices_env=(("CUDA_VISIBLE_DEVICES", "0"),),
        device_nodes=(DeviceNode("/dev/nvidia1", readable=False, writable=False),),
        loaded_modules=("nouveau",),
    )
    report = diagnose(_inventory(_nvidia("590.44.01", 4), frameworks=(_torch("12.8", 1),), system=system))
    finding = next(f for f in report.findings if f.id == "framework.sees_fewer_devices")
    assert finding.severity is Severity.WARN
    assert "sees 1 of the 4 nvidia device(s)" in finding.message
    assert "CUDA_VISIBLE_DEVICES='0'" in finding.message
    assert "/dev/nvidia1" in finding.message and "nouveau" in finding.message


def test_sees_no_device_is_an_error() -> None:
    report = diagnose(_inventory(_nvidia("590.44.01", 2), frameworks=(_torch("12.8", 0),)))
    assert next(f for f in report.findings if f.id == "framework.sees_fewer_devices").severity is Severity.ERROR


def test_mig_gpu_counts_as_one_cuda_device() -> None:
    mig = Gpu(Vendor.NVIDIA, 0, "A100", mig_enabled=True, mig_devices=(MigDevice(0, "1g.10gb", None, 14),) * 3)
    plain = Gpu(Vendor.NVIDIA, 1, "A100")
    assert expected_cuda_devices(_inventory((mig, plain))) == 2


def test_probe_failure_is_reported() -> None:
    broken = Framework("jax", True, error="import failed (killed by signal 11): Segmentation fault")
    finding = next(
        f for f in diagnose(_inventory((), frameworks=(broken,))).findings if f.id == "framework.probe_failed"
    )
    assert "signal 11" in finding.message and "import jax" in finding.remedy


# --- Linux settings -----------------------------------------------------------------------


def test_small_shm_warns() -> None:
    system = SystemFacts(observed=True, shm_total_bytes=64 * 1024**2)
    finding = next(f for f in diagnose(_inventory((), system=system)).findings if f.id == "system.shm_small")
    assert finding.severity is Severity.WARN and "64.0 MiB" in finding.message and "--shm-size" in finding.remedy


def test_numa_balancing_judged_only_with_several_nodes_and_gpus() -> None:
    system = SystemFacts(observed=True, numa_balancing=1)
    gpus = _nvidia("590.44.01")
    assert _ids(_inventory(gpus, cpu=CPU_2NODE, system=system))["system.numa_balancing"] is Severity.WARN
    assert _ids(_inventory(gpus, cpu=CPU_1NODE, system=system))["system.numa_balancing"] is Severity.OK
    assert _ids(_inventory((), cpu=CPU_2NODE, system=system))["system.numa_balancing"] is Severity.OK


def test_memlock_matters_only_with_rdma() -> None:
    limited = SystemFacts(observed=True, memlock_known=True, memlock_limit_bytes=65536)
    assert _ids(_inventory((), system=limited))["system.memlock"] is Severity.OK
    rdma = replace(limited, infiniband_devices=("mlx5_0",))
    assert _ids(_inventory((), system=rdma))["system.memlock"] is Severity.WARN


def test_powersave_on_acpi_cpufreq_warns() -> None:
    slow = SystemFacts(observed=True, cpu_governors=("powersave",), cpufreq_driver="acpi-cpufreq")
    assert _ids(_inventory((), system=slow))["system.cpu_governor"] is Severity.WARN
    pstate = replace(slow, cpufreq_driver="intel_pstate")
    assert _ids(_inventory((), system=pstate))["system.cpu_governor"] is Severity.OK


def test_simulated_machine_gets_no_settings_findings() -> None:
    assert not any(i.startswith("system.") for i in _ids(_inventory((), system=SystemFacts())))


def test_findings_are_sorted_errors_first() -> None:
    gpus = parse_hl_smi(fixture_text("hl-smi/gaudi2-hl225-x8-drv1.21.1.hl-smi-table.txt")).gpus
    system = SystemFacts(observed=True, swappiness=10)
    severities = [f.severity for f in diagnose(_inventory(gpus, system=system)).findings]
    assert severities == sorted(severities, key=[Severity.ERROR, Severity.WARN, Severity.OK].index)


# --- the CUDA table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cuda", "family", "release"),
    [
        ("12.2", "525.60.13", "535.54.03"),
        ("12.8", "525.60.13", "570.26"),
        ("12.7", "525.60.13", "560.28.03"),  # no 12.7 release: the newest below it
        ("11.8", "450.80.02", "520.61.05"),
        ("13.0", "580", "580.65.06"),
        ("10.2", None, None),
        ("garbage", None, None),
    ],
)
def test_driver_requirement(cuda: str, family: str | None, release: str | None) -> None:
    assert driver_requirement(cuda) == (family, release)


def test_driver_comparison() -> None:
    assert version_tuple("535.54.03") == (535, 54, 3)
    assert driver_at_least("570.26", "570.26")
    assert driver_at_least("580.65.06", "580")
    assert not driver_at_least("525.60.12", "525.60.13")


def test_jobs_checks_say_what_jobs_get() -> None:
    from tuxai.doctor.jobs_checks import jobs_findings
    from tuxai.envs import PipSettings
    from tuxai.hardware.cgroups import CgroupSupport

    off = jobs_findings(CgroupSupport(0, problem="cgroup v2: /sys/fs/cgroup/x/tuxai: Permission denied"), PipSettings())
    assert off[0].id == "jobs.cgroups_unavailable" and off[0].severity.value == "warn"
    assert "Permission denied" in off[0].message and "Delegate=yes" in off[0].remedy
    assert off[1].message == "job environments (--env) install from PyPI (no pip settings)"
    on = jobs_findings(
        CgroupSupport(2, {"unified": "/sys/fs/cgroup/user.slice/tuxai"}),
        PipSettings(find_links=("/opt/wheels",), origins={"find-links": "pip config [global]"}),
    )
    assert on[0].id == "jobs.cgroups" and "cgroup v2" in on[0].message and "user.slice/tuxai" in on[0].message
    assert "find-links = /opt/wheels (from pip config [global])" in on[1].message
