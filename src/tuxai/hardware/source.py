"""Where probes get their raw text: the live machine, a recording of it, or a replay.

A recording folder has a stable, documented layout (docs/recording.md):
one file per tool (``nvidia-smi-q-x.xml`` …), ``<file>.error`` when the tool
was present but failed, ``sysfs/`` holding the subset of ``/sys``, ``/proc``
and ``/etc`` the probes read, ``host-facts.json`` and ``frameworks.json``.
A missing tool file means "tool not present".
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tuxai.errors import ToolOutputError, UsageError
from tuxai.hardware.system import live_facts

# Record file name → the command it stands for.
TOOLS: dict[str, tuple[str, ...]] = {
    "nvidia-smi-q-x.xml": ("nvidia-smi", "-q", "-x"),
    "nvidia-smi-topo-m.txt": ("nvidia-smi", "topo", "-m"),
    "rocm-smi-showallinfo.json": ("rocm-smi", "--showallinfo", "--json"),
    "amd-smi-static.json": ("amd-smi", "static", "--json"),
    "hl-smi.txt": ("hl-smi",),
    "lscpu-J.json": ("lscpu", "-J"),
    "numactl-hardware.txt": ("numactl", "--hardware"),
}
NVML_FILE = "nvml.json"
FACTS_FILE = "host-facts.json"
FRAMEWORKS_FILE = "frameworks.json"
SYSFS_DIR = "sysfs"

# What the probes read under the root, copied into a recording's sysfs/.
SYSFS_PATTERNS = (
    "proc/meminfo",
    "proc/cpuinfo",
    "proc/sys/kernel/hostname",
    "proc/sys/kernel/osrelease",
    "proc/sys/kernel/numa_balancing",
    "proc/sys/vm/swappiness",
    "etc/os-release",
    "sys/devices/system/cpu/online",
    "sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id",
    "sys/devices/system/cpu/cpu[0-9]*/topology/core_id",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_driver",
    "sys/devices/system/node/node[0-9]*/cpulist",
    "sys/devices/system/node/node[0-9]*/meminfo",
    "sys/devices/system/node/node[0-9]*/distance",
    "sys/kernel/mm/transparent_hugepage/enabled",
    "sys/kernel/mm/transparent_hugepage/defrag",
    "sys/kernel/mm/hugepages/hugepages-*/nr_hugepages",
    "sys/kernel/mm/hugepages/hugepages-*/free_hugepages",
    "sys/module/nvidia/refcnt",
    "sys/module/nvidia_uvm/refcnt",
    "sys/module/nouveau/refcnt",
    "sys/module/amdgpu/refcnt",
    "sys/module/habanalabs/refcnt",
    "sys/class/infiniband/*/node_type",
    "sys/bus/pci/devices/*/numa_node",
    "sys/class/drm/card[0-9]*/device/vendor",
    "sys/class/drm/card[0-9]*/device/device",
    "sys/class/drm/card[0-9]*/device/uevent",
    "sys/class/drm/card[0-9]*/device/numa_node",
    "sys/class/drm/card[0-9]*/device/mem_info_vram_total",
    "sys/class/drm/card[0-9]*/device/current_link_speed",
    "sys/class/drm/card[0-9]*/device/max_link_speed",
    "sys/class/drm/card[0-9]*/device/current_link_width",
    "sys/class/drm/card[0-9]*/device/max_link_width",
    "sys/class/drm/card[0-9]*/device/unique_id",
    "sys/class/drm/card[0-9]*/device/product_name",
)


@dataclass(frozen=True)
class ToolRun:
    """One tool's result: ``output`` is None when the tool is not present here."""

    file: str
    output: str | None
    error: str | None = None


class Source(Protocol):
    """Raw facts for the probes, from wherever they come."""

    @property
    def root(self) -> Path:
        """The filesystem root that sysfs readers use."""
        ...

    @property
    def name(self) -> str:
        """``live``, ``record:DIR`` or ``replay:DIR``."""
        ...

    @property
    def live(self) -> bool:
        """True when libraries (NVML, frameworks) should be asked now, not read back."""
        ...

    def tool(self, file: str) -> ToolRun:
        """The output of the tool recorded under ``file`` (a key of ``TOOLS``)."""
        ...

    def facts(self) -> dict[str, Any]:
        """The live facts (``host-facts.json``)."""
        ...

    def saved(self, file: str) -> Any | None:
        """A JSON document saved beside the tools (``nvml.json``, ``frameworks.json``)."""
        ...

    def save(self, file: str, document: Any) -> None:
        """Keep a JSON document for a later replay (no-op unless recording)."""
        ...


def run_tool(argv: tuple[str, ...], timeout_s: float) -> tuple[str | None, str | None]:
    """Run one tool: ``(stdout, None)``, ``(None, None)`` if absent, ``(stdout, error)`` if it failed.

    Raises nothing: every failure comes back as the error string.
    """
    if shutil.which(argv[0]) is None:
        return None, None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return "", f"`{' '.join(argv)}` did not answer within {timeout_s:.0f} s"
    except OSError as exc:
        return "", f"`{' '.join(argv)}` could not start: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        first = detail[0] if detail else "no output"
        return done.stdout, f"`{' '.join(argv)}` exited with status {done.returncode}: {first}"
    return done.stdout, None


class LiveSource:
    """The machine this process runs on."""

    def __init__(self, timeout_s: float = 10.0, runner: Callable[..., tuple[str | None, str | None]] = run_tool):
        self._timeout_s = timeout_s
        self._runner = runner

    @property
    def root(self) -> Path:
        """``/``."""
        return Path("/")

    @property
    def name(self) -> str:
        """``live``."""
        return "live"

    @property
    def live(self) -> bool:
        """Yes."""
        return True

    def tool(self, file: str) -> ToolRun:
        """Run the tool now."""
        output, error = self._runner(TOOLS[file], self._timeout_s)
        return ToolRun(file, output, error)

    def facts(self) -> dict[str, Any]:
        """Read the live facts now."""
        return live_facts()

    def saved(self, file: str) -> Any | None:
        """Nothing is saved on a live machine."""
        return None

    def save(self, file: str, document: Any) -> None:
        """Nothing to keep on a live machine."""


class RecordingSource(LiveSource):
    """The live machine, with every raw output also written to a folder."""

    def __init__(self, folder: Path, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the recording folder {folder}: {exc}", "pick a writable path") from None
        self.folder = folder
        self._copy_sysfs()

    @property
    def root(self) -> Path:
        """The copy just made, so the report and a later replay read the same bytes."""
        return self.folder / SYSFS_DIR

    @property
    def name(self) -> str:
        """``record:DIR``."""
        return f"record:{self.folder}"

    def tool(self, file: str) -> ToolRun:
        """Run the tool and keep its output (and error, if any)."""
        run = super().tool(file)
        if run.output is not None:
            self._write(self.folder / file, run.output.encode())
        if run.error is not None:
            self._write(self.folder / f"{file}.error", (run.error + "\n").encode())
        return run

    def facts(self) -> dict[str, Any]:
        """Read the live facts and keep them."""
        facts = super().facts()
        self.save(FACTS_FILE, facts)
        return facts

    def save(self, file: str, document: Any) -> None:
        """Write a JSON document into the folder."""
        self._write(self.folder / file, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())

    def _write(self, path: Path, content: bytes) -> None:
        """Write one file of the recording.

        Raises:
            UsageError: the disk is full or the folder is not writable.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        except OSError as exc:
            raise UsageError(
                f"cannot write the recording file {path}: {exc.strerror}",
                "free some space or pick another folder for --record",
            ) from None

    def _copy_sysfs(self) -> None:
        target = self.folder / SYSFS_DIR
        for pattern in SYSFS_PATTERNS:
            for path in sorted(Path("/").glob(pattern)):
                try:
                    content = path.read_bytes()
                except OSError:
                    continue
                self._write(target / path.relative_to("/"), content)


class ReplaySource:
    """A folder written by ``tuxai doctor --record``."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise UsageError(f"no recording folder at {folder}", "pass a folder made by `tuxai doctor --record DIR`")
        self.folder = folder

    @property
    def root(self) -> Path:
        """The recording's ``sysfs/`` folder."""
        return self.folder / SYSFS_DIR

    @property
    def name(self) -> str:
        """``replay:DIR``."""
        return f"replay:{self.folder}"

    @property
    def live(self) -> bool:
        """No: everything comes from the folder."""
        return False

    def tool(self, file: str) -> ToolRun:
        """The recorded output, or absent."""
        path, error = self.folder / file, self.folder / f"{file}.error"
        output = path.read_text(errors="replace") if path.is_file() else None
        message = error.read_text().strip() if error.is_file() else None
        if output is None and message is not None:
            output = ""
        return ToolRun(file, output, message)

    def facts(self) -> dict[str, Any]:
        """The recorded live facts, or none."""
        document = self.saved(FACTS_FILE)
        return document if isinstance(document, dict) else {}

    def saved(self, file: str) -> Any | None:
        """A recorded JSON document.

        Raises:
            ToolOutputError: the document is truncated or not valid JSON.
        """
        path = self.folder / file
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ToolOutputError(file, f"the recorded JSON is truncated or malformed ({exc})") from None

    def save(self, file: str, document: Any) -> None:
        """A replay changes nothing."""
