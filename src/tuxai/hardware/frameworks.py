"""ML frameworks (torch, tensorflow, jax, onnxruntime), each probed in its own process.

A TensorFlow import takes seconds and a broken CUDA install can crash or hang
the importing process, so every probe runs in a child ``python -c`` with a
timeout, all of them in parallel; the doctor never imports a framework itself.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from tuxai.errors import UsageError
from tuxai.model.framework import Framework

FRAMEWORKS = ("torch", "tensorflow", "jax", "onnxruntime")
MARKER = "TUXAI_PROBE "

# Each script prints one line: MARKER + JSON {version, build_cuda, build_rocm, gpu_support, devices}.
_SCRIPTS = {
    "torch": """
import torch
cuda = torch.version.cuda
hip = getattr(torch.version, "hip", None)
devices = []
if torch.cuda.is_available():
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
result = dict(version=torch.__version__, build_cuda=cuda, build_rocm=hip,
              gpu_support=bool(cuda or hip), devices=devices)
""",
    "tensorflow": """
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
info = tf.sysconfig.get_build_info()
gpus = tf.config.list_physical_devices("GPU")
result = dict(version=tf.__version__, build_cuda=info.get("cuda_version"),
              build_rocm=info.get("rocm_version"),
              gpu_support=bool(info.get("is_cuda_build") or info.get("is_rocm_build")),
              devices=[d.name for d in gpus])
""",
    "jax": """
import jax
devices = [d for d in jax.devices() if d.platform != "cpu"]
backends = {d.platform for d in devices}
try:
    import jaxlib
    build_cuda = getattr(jaxlib, "cuda_version", None)
except Exception:
    build_cuda = None
import contextlib
import importlib.util
plugins = [m for m in ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")
           if importlib.util.find_spec(m)]
cuda_plugin = next((p for p in plugins if "cuda" in p), None)
rocm_plugin = next((p for p in plugins if "rocm" in p), None)
result = dict(version=jax.__version__,
              build_cuda=build_cuda or (cuda_plugin.split("cuda")[1].split("_")[0] if cuda_plugin else None),
              build_rocm=rocm_plugin.split("rocm")[1].split("_")[0] if rocm_plugin else None,
              gpu_support=bool(plugins or backends), devices=[str(d) for d in devices])
""",
    "onnxruntime": """
import onnxruntime as ort
providers = ort.get_available_providers()
gpu = [p for p in providers if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider",
                                     "ROCMExecutionProvider", "MIGraphXExecutionProvider")]
result = dict(version=ort.__version__, build_cuda=None, build_rocm=None,
              gpu_support=bool(gpu), devices=gpu)
""",
}


def _child_script(name: str) -> str:
    return _SCRIPTS[name] + f"\nimport json\nprint({MARKER!r} + json.dumps(result), flush=True)\n"


def parse_probe_output(name: str, stdout: str, returncode: int, stderr: str) -> Framework:
    """A probe child's output → ``Framework``; the marker line carries the JSON.

    ``'TUXAI_PROBE {"version": "2.13.0+cpu", …}'`` → ``Framework("torch", True, "2.13.0+cpu", …)``.
    """
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith(MARKER)), None)
    if line is None:
        tail = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        reason = tail[-1] if tail else "no output"
        status = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
        return Framework(name, installed=True, error=f"import failed ({status}): {reason}")
    try:
        data: dict[str, Any] = json.loads(line[len(MARKER) :])
    except json.JSONDecodeError as exc:
        return Framework(name, installed=True, error=f"probe answered malformed JSON: {exc}")
    return Framework(
        name,
        installed=True,
        version=data.get("version"),
        build_cuda=data.get("build_cuda") or None,
        build_rocm=data.get("build_rocm") or None,
        gpu_support=bool(data.get("gpu_support")),
        devices=tuple(str(d) for d in data.get("devices") or ()),
    )


def probe_framework(name: str, python: str, timeout_s: float) -> Framework:
    """Import one framework in a child process and report what it sees.

    The child runs in its own session so a hung import is killed with every
    process it started (a CUDA initialisation may fork helpers).
    """
    started = time.monotonic()
    try:
        child = subprocess.Popen(
            [python, "-c", _child_script(name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        return Framework(name, installed=True, error=f"could not start {python}: {exc}")
    try:
        stdout, stderr = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return Framework(
            name,
            installed=True,
            error=f"import did not finish within {timeout_s:.0f} s (a hung CUDA/ROCm initialisation?)",
            probe_s=round(time.monotonic() - started, 3),
        )
    found = parse_probe_output(name, stdout, child.returncode, stderr)
    return replace(found, probe_s=round(time.monotonic() - started, 3))


def installed(name: str, python: str) -> bool:
    """Whether ``name`` can be imported by ``python`` (checked without importing it).

    Raises:
        UsageError: ``python`` cannot be run.
    """
    if python == sys.executable:
        return importlib.util.find_spec(name) is not None
    try:
        done = subprocess.run(
            [python, "-c", f"import importlib.util,sys; sys.exit(importlib.util.find_spec({name!r}) is None)"],
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(
            f"cannot run the interpreter {python}: {exc}", hint="--python must name a working Python interpreter"
        ) from None
    return done.returncode == 0


def probe_frameworks(python: str = "", timeout_s: float = 15.0) -> tuple[Framework, ...]:
    """Probe every known framework in parallel; absent ones are reported as not installed."""
    python = python or sys.executable
    present = [n for n in FRAMEWORKS if installed(n, python)]
    with ThreadPoolExecutor(max_workers=max(1, len(present))) as pool:
        results = dict(zip(present, pool.map(lambda n: probe_framework(n, python, timeout_s), present), strict=True))
    return tuple(results.get(n) or Framework(n, installed=False) for n in FRAMEWORKS)


def frameworks_to_json(frameworks: tuple[Framework, ...]) -> list[dict[str, Any]]:
    """Frameworks as the ``frameworks.json`` of a recording."""
    return [dict(f.__dict__, devices=list(f.devices)) for f in frameworks]


def frameworks_from_json(document: Any) -> tuple[Framework, ...]:
    """``frameworks.json`` → frameworks; entries that are not objects are skipped."""
    out = []
    for entry in document if isinstance(document, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            known = {k: v for k, v in entry.items() if k in Framework.__dataclass_fields__}
            known["devices"] = tuple(known.get("devices") or ())
            known.setdefault("installed", False)
            out.append(Framework(**known))
    return tuple(out)
