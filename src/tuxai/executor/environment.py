"""A job's environment variables: devices by UUID, shares, threads, its id and checkpoint directory.

Pure: ``job_environment(base, ...)`` → the dict the shim passes to the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tuxai.model.gpu import Vendor
from tuxai.model.job import REQUEUE_EXIT_CODE
from tuxai.model.resources import WHOLE_GPU_MILLI, Allocation

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)
# Variables the daemon decides; a submitter's own value of these is replaced.
DEVICE_VARIABLES = (
    "CUDA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE",
    "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT",
)
# Variables a job may not set itself (``export``) nor bring from the submitter's environment:
# the daemon's decisions (devices, shares) and its own ``TUXAI_*`` names. (Security issue A5:
# an exported ``TUXAI_CHECKPOINT_DIR`` once pointed the root shim at a root-owned directory.)
PROTECTED_VARIABLES = frozenset(
    (*DEVICE_VARIABLES, "CUDA_DEVICE_ORDER", "HABANA_VISIBLE_MODULES", "NVIDIA_VISIBLE_DEVICES")
)
PROTECTED_PREFIX = "TUXAI_"


def is_protected(name: str) -> bool:
    """True for a variable only the daemon sets (a job's ``export`` of it is refused).

    >>> is_protected("TUXAI_CHECKPOINT_DIR"), is_protected("CUDA_VISIBLE_DEVICES"), is_protected("OMP_NUM_THREADS")
    (True, True, False)
    """
    return name in PROTECTED_VARIABLES or name.startswith(PROTECTED_PREFIX)


@dataclass(frozen=True)
class JobContext:
    """The facts about one attempt that end up in variables."""

    job_id: int
    attempt: int
    checkpoint_dir: str
    vendor: Vendor | None  # of the allocated GPUs; None without GPUs
    env_path: str = ""  # a virtual environment to put first on PATH
    endpoint_file: str = ""  # where a served model writes its URL (``submit --serve``)


def _devices(allocation: Allocation, vendor: Vendor | None) -> dict[str, str]:
    if not allocation.gpus:
        # A CPU job on a GPU box sees no GPU, rather than all of them.
        return {"CUDA_VISIBLE_DEVICES": "", "HIP_VISIBLE_DEVICES": "", "ROCR_VISIBLE_DEVICES": ""}
    if vendor is Vendor.INTEL_GAUDI:
        return {"HABANA_VISIBLE_MODULES": ",".join(str(g.index) for g in allocation.gpus)}
    if vendor is Vendor.AMD:
        return {"ROCR_VISIBLE_DEVICES": ",".join(g.uuid or str(g.index) for g in allocation.gpus)}
    variables = {"CUDA_VISIBLE_DEVICES": allocation.visible_devices, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    share = allocation.gpus[0]
    if len(allocation.gpus) == 1 and share.mig_uuid is None and share.milli < WHOLE_GPU_MILLI:
        variables["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(max(1, share.milli * 100 // WHOLE_GPU_MILLI))
    if len(allocation.gpus) == 1 and share.mig_uuid is None and share.memory_bytes is not None:
        mib = share.memory_bytes // 2**20
        variables["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = f"0={mib}M"
    return variables


def _memory_caps(allocation: Allocation, gpu_memory_total: int | None) -> dict[str, str]:
    """Framework caps for a shared slice: JAX by fraction, TensorFlow by growth, all by our variables."""
    if len(allocation.gpus) != 1 or allocation.gpus[0].mig_uuid is not None:
        return {}
    share = allocation.gpus[0]
    if share.milli >= WHOLE_GPU_MILLI and share.memory_bytes is None:
        return {}
    fraction = share.milli / WHOLE_GPU_MILLI
    if share.memory_bytes is not None and gpu_memory_total:
        fraction = min(fraction, share.memory_bytes / gpu_memory_total)
    caps = {
        "TUXAI_GPU_FRACTION": f"{fraction:.3f}",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{fraction:.3f}",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }
    if share.memory_bytes is not None:
        caps["TUXAI_GPU_MEMORY_BYTES"] = str(share.memory_bytes)
    return caps


def job_environment(
    base: Mapping[str, str],
    exports: Mapping[str, str],
    allocation: Allocation,
    context: JobContext,
    gpu_memory_total: int | None = None,
) -> dict[str, str]:
    """The job's environment: ``base`` (the submitter's), then ours, then the job's own exports.

    Neither ``base`` nor ``exports`` can set a protected variable (``is_protected``).

    >>> job_environment({}, {}, Allocation("n", cpus=(0, 1)), JobContext(7, 1, "/c", None))["OMP_NUM_THREADS"]
    '2'
    """
    env = {k: v for k, v in base.items() if not is_protected(k)}
    env.update(_devices(allocation, context.vendor))
    env.update(_memory_caps(allocation, gpu_memory_total))
    if allocation.cpus:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(len(allocation.cpus))))
    env.update(
        {
            "TUXAI_JOB_ID": str(context.job_id),
            "TUXAI_ATTEMPT": str(context.attempt),
            "TUXAI_CHECKPOINT_DIR": context.checkpoint_dir,
            "TUXAI_REQUEUE_EXIT_CODE": str(REQUEUE_EXIT_CODE),
            "TUXAI_GPU_UUIDS": ",".join(g.mig_uuid or g.uuid or "" for g in allocation.gpus),
            "TUXAI_CPUS": ",".join(str(c) for c in allocation.cpus),
        }
    )
    if context.endpoint_file:
        env["TUXAI_ENDPOINT_FILE"] = context.endpoint_file
    if context.env_path:
        env["VIRTUAL_ENV"] = context.env_path
        env["PATH"] = f"{context.env_path}/bin:{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        env.pop("PYTHONHOME", None)
    env.update({k: v for k, v in exports.items() if not is_protected(k)})
    return env


def real_cpus(allocated: tuple[int, ...], online: tuple[int, ...]) -> tuple[int, ...]:
    """The CPUs to pin to: the allocated ones, or — on a simulated inventory larger than this
    machine — each allocated CPU folded onto the real ones (CPU k → online[k mod n]).

    >>> real_cpus((0, 5), (0, 1, 2, 3))
    (0, 1)
    """
    if not online:
        return ()
    real = set(online)
    if all(c in real for c in allocated):
        return allocated
    return tuple(sorted({online[c % len(online)] for c in allocated}))
