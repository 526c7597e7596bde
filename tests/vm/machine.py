"""One run of the VM tier: the source tree onto a second disk, the guest booted under qemu, results read back.

The second disk is an ext4 image made with ``mkfs.ext4 -d`` from a staging directory (src/ with
its bytecode compiled here, the guest's scripts, the inventory, packaging/tuxai.service and an
empty ``out/``); the guest mounts it at ``/mnt/tuxai-vm`` and writes ``out/``, read back with
``debugfs -R "rdump /out DIR"`` (no mount, no root needed). qemu runs TCG (KVM fails nested
here), two vCPUs, the root disk with ``snapshot=on`` so the cached image never changes.
"""

from __future__ import annotations

import compileall
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.vm.image import DATA_MOUNT, GUEST, REPO, Image

DATA_SIZE = "256M"
GUEST_MEMORY_MIB = 1024
GUEST_CPUS = 2
BOOT_TIMEOUT_S = 600.0  # boot (up to a minute on a busy host), scenarios (the unit stops at 540 s), poweroff


class VmError(Exception):
    """The guest did not run: qemu is missing, failed, or the guest wrote no result."""


@dataclass(frozen=True)
class GuestRun:
    """What one boot left: the scenarios' result, the guest's logs, the console and the times."""

    result: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # out/<name> → text (run.log, journal.txt …)
    console: str = ""
    boot_s: float = 0.0

    def scenario(self, name: str) -> dict[str, Any]:
        """One scenario's facts; its error (a traceback from the guest) fails the caller's test."""
        facts: dict[str, Any] = self.result.get("scenarios", {}).get(name) or {}
        if "error" in facts:
            raise AssertionError(f"scenario {name} failed in the guest:\n{facts['error']}")
        return facts


def run_directory(cache: Path, keep: int = 3) -> Path:
    """A fresh ``<cache>/run-*`` folder for one run; only the ``keep`` newest are kept (runs may overlap)."""
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=cache))
    runs = sorted(cache.glob("run-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return work


def stage(directory: Path) -> Path:
    """The second disk's tree: the current source, compiled here (CPython 3.11 both sides), and the scripts."""
    shutil.copytree(REPO / "src", directory / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(directory / "src", quiet=1, workers=0)  # the guest runs code ~5x slower
    for name in ("run.sh", "scenarios.py", "job.py", "two-gpu-vm.yaml"):
        shutil.copy(GUEST / name, directory / name)
    (directory / "packaging").mkdir()
    shutil.copy(REPO / "packaging/tuxai.service", directory / "packaging/tuxai.service")
    (directory / "out").mkdir()
    return directory


def _tool(argv: list[str], timeout_s: float, what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise VmError(f"{what}: {argv[0]} is not installed (run `make vm-deps` as root)") from None
    if done.returncode != 0:
        raise VmError(f"{what} failed with exit status {done.returncode}: {(done.stderr or done.stdout).strip()}")


def make_disk(tree: Path, disk: Path) -> Path:
    """An ext4 image holding ``tree`` (made without mounting)."""
    _tool(["truncate", "-s", DATA_SIZE, str(disk)], 30, "truncate")
    _tool(["mkfs.ext4", "-q", "-F", "-L", "tuxai-data", "-d", str(tree), str(disk)], 120, "mkfs.ext4 of the data disk")
    return disk


def qemu_argv(image: Image, data_disk: Path, console: Path) -> list[str]:
    """The qemu command line: TCG, 2 vCPUs, 1 GiB, no network, the serial console into a file."""
    return [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        str(GUEST_MEMORY_MIB),
        "-smp",
        str(GUEST_CPUS),
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(image.initrd),
        "-append",
        "root=/dev/vda rw console=ttyS0 quiet mitigations=off systemd.unified_cgroup_hierarchy=1",
        "-drive",
        f"file={image.root},if=virtio,format=raw,snapshot=on",
        "-drive",
        f"file={data_disk},if=virtio,format=raw",
        "-device",
        "virtio-rng-pci",
        "-nic",
        "none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{console}",
        "-no-reboot",
    ]


def boot(image: Image, data_disk: Path, console: Path, timeout_s: float = BOOT_TIMEOUT_S) -> float:
    """Boot the guest until it powers off; the wall time. Raises ``VmError`` on a qemu failure or timeout."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            qemu_argv(image, data_disk, console),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        raise VmError("qemu-system-x86_64 is not installed (run `make vm-deps` as root)") from None
    except subprocess.TimeoutExpired:
        raise VmError(f"the guest did not power off within {timeout_s:g} s; console:\n{_tail(console)}") from None
    if done.returncode != 0:
        raise VmError(f"qemu failed with exit status {done.returncode}: {done.stderr.strip()}\n{_tail(console)}")
    return time.monotonic() - started


def _tail(console: Path, lines: int = 40) -> str:
    try:
        return "\n".join(console.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console output)"


def read_back(data_disk: Path, into: Path) -> dict[str, str]:
    """The guest's ``out/`` files, by name (``debugfs rdump``: no mount)."""
    into.mkdir(parents=True, exist_ok=True)
    _tool(["debugfs", "-R", f"rdump /out {into}", str(data_disk)], 60, "debugfs rdump of the data disk")
    return {p.name: p.read_text(errors="replace") for p in sorted((into / "out").iterdir()) if p.is_file()}


def run_guest(image: Image, work: Path) -> GuestRun:
    """Stage, boot and read back one run of the scenarios. Raises ``VmError`` when there is no result."""
    disk = make_disk(stage(work / "data"), work / "data.img")
    console = work / "console.log"
    boot_s = boot(image, disk, console)
    files = read_back(disk, work / "back")
    text = console.read_text(errors="replace") if console.exists() else ""
    if "result.json" not in files:
        log = files.get("run.log", "(no run.log)")
        raise VmError(
            f"the guest wrote no result.json under {DATA_MOUNT}/out; run.log:\n{log}\nconsole:\n{_tail(console)}"
        )
    return GuestRun(result=json.loads(files["result.json"]), files=files, console=text, boot_s=boot_s)
