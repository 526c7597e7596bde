"""Checks of each framework against the devices and the driver of this machine."""

from __future__ import annotations

from collections.abc import Iterator

from tuxai.doctor.cuda import driver_at_least, driver_requirement
from tuxai.doctor.findings import Finding, Severity
from tuxai.model.framework import Framework
from tuxai.model.gpu import Vendor
from tuxai.model.inventory import Inventory

_INSTALL = {
    "torch": "install a CUDA build of torch that your driver supports (pytorch.org lists one index URL per CUDA)",
    "tensorflow": "pip install 'tensorflow[and-cuda]'",
    "jax": "pip install 'jax[cuda12]'",
    "onnxruntime": "pip install onnxruntime-gpu",
}


def expected_cuda_devices(inventory: Inventory) -> int:
    """How many CUDA devices one process should see: whole GPUs, plus one MIG instance at most."""
    nvidia = [g for g in inventory.gpus if g.vendor is Vendor.NVIDIA]
    whole = sum(1 for g in nvidia if not g.mig_enabled)
    mig = any(g.mig_enabled and g.mig_devices for g in nvidia)
    return whole + (1 if mig else 0)


def _why_fewer(inventory: Inventory, vendor: Vendor) -> list[str]:
    system = inventory.system
    reasons = []
    variables = (
        ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
        if vendor is Vendor.NVIDIA
        else ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")
    )
    for name in variables:
        value = system.env(name)
        if value is not None:
            reasons.append(f"{name}={value!r} hides devices")
    prefix = "/dev/nvidia" if vendor is Vendor.NVIDIA else "/dev/kfd"
    blocked = [n.path for n in system.device_nodes if n.path.startswith(prefix) and not (n.readable and n.writable)]
    if blocked:
        reasons.append(f"this user cannot open {', '.join(blocked)} (add the user to the video/render group)")
    if vendor is Vendor.NVIDIA and "nouveau" in system.loaded_modules:
        reasons.append("the nouveau driver is loaded (blacklist it and load nvidia)")
    return reasons


def _check_driver(inventory: Inventory, framework: Framework) -> Iterator[Finding]:
    drivers = {g.driver_version for g in inventory.gpus if g.vendor is Vendor.NVIDIA and g.driver_version}
    if not framework.build_cuda or not drivers:
        return
    driver = min(drivers)
    family, release = driver_requirement(framework.build_cuda)
    subject = f"{framework.name} {framework.version}"
    if family is not None and not driver_at_least(driver, family):
        yield Finding(
            "framework.driver_too_old",
            Severity.ERROR,
            f"{subject} was built with CUDA {framework.build_cuda}, which needs driver ≥ {release or family}; "
            f"this machine has {driver}",
            f"upgrade the NVIDIA driver to ≥ {release or family}, or install a {framework.name} build for an "
            "older CUDA",
            subject,
        )
    elif release is not None and not driver_at_least(driver, release):
        yield Finding(
            "framework.driver_older_than_build",
            Severity.WARN,
            f"{subject} was built with CUDA {framework.build_cuda} (full support from driver {release}); "
            f"driver {driver} runs it through minor-version compatibility, without PTX JIT of newer code",
            f"upgrade the NVIDIA driver to ≥ {release}",
            subject,
        )


def _check_devices(inventory: Inventory, framework: Framework) -> Iterator[Finding]:
    subject = f"{framework.name} {framework.version}"
    nvidia = any(g.vendor is Vendor.NVIDIA for g in inventory.gpus)
    amd = any(g.vendor is Vendor.AMD for g in inventory.gpus)
    if not (nvidia or amd):
        return
    if not framework.gpu_support:
        kind = "NVIDIA" if nvidia else "AMD"
        yield Finding(
            "framework.no_gpu_support",
            Severity.WARN,
            f"{subject} is a CPU-only build while this machine has {kind} GPUs",
            _INSTALL.get(framework.name, "install the framework's GPU build"),
            subject,
        )
        return
    if framework.name == "onnxruntime":
        return
    vendor = Vendor.AMD if framework.build_rocm and amd else Vendor.NVIDIA
    expected = (
        expected_cuda_devices(inventory)
        if vendor is Vendor.NVIDIA
        else sum(1 for g in inventory.gpus if g.vendor is Vendor.AMD)
    )
    seen = len(framework.devices)
    if seen < expected:
        reasons = _why_fewer(inventory, vendor)
        yield Finding(
            "framework.sees_fewer_devices",
            Severity.ERROR if seen == 0 else Severity.WARN,
            f"{subject} sees {seen} of the {expected} {vendor.value} device(s) this machine has"
            + (f": {'; '.join(reasons)}" if reasons else ""),
            "fix what is listed"
            if reasons
            else "check `dmesg` for driver errors and the framework's CUDA/ROCm libraries",
            subject,
        )


def framework_findings(inventory: Inventory) -> Iterator[Finding]:
    """Probe failures, CPU-only builds, missing devices and driver/CUDA mismatches."""
    for framework in inventory.frameworks:
        if not framework.installed:
            continue
        if framework.error:
            yield Finding(
                "framework.probe_failed",
                Severity.WARN,
                f"{framework.name}: {framework.error}",
                f"run `python -c 'import {framework.name}'` to see the full error",
                framework.name,
            )
            continue
        yield from _check_driver(inventory, framework)
        yield from _check_devices(inventory, framework)
