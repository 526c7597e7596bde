"""The daemon's Prometheus series (written by ``model.exposition``). Pure: ``render(view)`` → text.

Per-GPU series carry dcgm-exporter's names and labels (``gpu``, ``UUID``, ``modelName``,
``Hostname``) so existing dashboards work; tuxai adds who holds what: ``tuxai_gpu_holder``,
``tuxai_job_*`` with ``job_id`` and ``user`` labels (not ``job``: Prometheus gives that
name to the scrape target and would rename ours ``exported_job``), and the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuxai.model.exposition import Exposition, labels
from tuxai.telemetry.samples import GpuSample, JobUsage


@dataclass(frozen=True)
class JobRow:
    """A job as the metrics show it."""

    job_id: int
    user: str
    name: str
    gpus: tuple[int, ...] = ()
    flags: frozenset[str] = frozenset()


@dataclass
class MetricsView:
    """Everything one scrape shows."""

    hostname: str
    samples: list[GpuSample]
    models: dict[int, str]
    running: list[JobRow]
    usage: dict[int, JobUsage]
    energy: dict[int, dict[str, float]]  # job → gpu_j, cpu_j, gpu_s (every job the store knows)
    users: dict[int, str]  # job → user, for the energy of ended jobs
    queue: dict[str, int]  # state → jobs
    sampler: str = "simulated"
    extra: dict[str, float] = field(default_factory=dict)


def render(view: MetricsView) -> str:
    """The scrape body."""
    out = Exposition()

    def gpu(sample: GpuSample) -> dict[str, object]:
        return {
            "gpu": sample.index,
            "UUID": sample.uuid or "",
            "modelName": view.models.get(sample.index, ""),
            "Hostname": view.hostname,
        }

    def each(attribute: str, scale: float = 1.0) -> list[tuple[str, float]]:
        rows = []
        for sample in view.samples:
            value = getattr(sample, attribute)
            if value is not None:
                rows.append((labels(**gpu(sample)), float(value) * scale))
        return rows

    out.family("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", each("util_pct"))
    out.family("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", each("memory_used_bytes", 2**-20))
    out.family("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", each("power_w"))
    out.family(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "counter",
        "Total energy consumption since boot (in mJ).",
        each("energy_j", 1000.0),
    )
    out.family("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", each("temperature_c"))
    out.family("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", each("sm_clock_mhz"))
    out.family("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", each("memory_clock_mhz"))
    out.family(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Volatile double-bit (uncorrectable) ECC errors.",
        each("ecc_uncorrected"),
    )  # fmt: skip
    out.family(
        "tuxai_gpu_sampler_info",
        "gauge",
        "Where the GPU series come from (nvml, amd-sysfs, simulated).",
        [(labels(sampler=view.sampler, Hostname=view.hostname), 1.0)],
    )
    out.family(
        "tuxai_gpu_holder",
        "gauge",
        "1 for each GPU held by a running job.",
        [
            (labels(gpu=g, job_id=job.job_id, user=job.user, name=job.name), 1.0)
            for job in view.running
            for g in job.gpus
        ],
    )
    running = [(job, labels(job_id=job.job_id, user=job.user, name=job.name)) for job in view.running]
    out.family("tuxai_job_running", "gauge", "1 for each running job.", [(labelled, 1.0) for _, labelled in running])
    out.family(
        "tuxai_job_cpu_seconds_total",
        "counter",
        "CPU time of a running job's processes (in s).",
        [(labelled, view.usage[job.job_id].cpu_s) for job, labelled in running if job.job_id in view.usage],
    )
    out.family(
        "tuxai_job_memory_bytes",
        "gauge",
        "Resident memory of a running job's processes (in bytes).",
        [(labelled, view.usage[job.job_id].memory_bytes) for job, labelled in running if job.job_id in view.usage],
    )
    for flag in ("idle", "hung"):
        out.family(
            f"tuxai_job_{flag}",
            "gauge",
            f"1 while a running job is flagged {flag}.",
            [(labelled, 1.0 if flag in job.flags else 0.0) for job, labelled in running],
        )
    for key, name, help_text in (
        ("gpu_j", "tuxai_job_gpu_energy_joules_total", "GPU energy attributed to a job (in J)."),
        ("cpu_j", "tuxai_job_cpu_energy_joules_total", "CPU energy attributed to a job (in J)."),
        ("gpu_s", "tuxai_job_gpu_seconds_total", "GPU time held by a job (in GPU-seconds)."),
    ):
        out.family(
            name,
            "counter",
            help_text,
            [
                (labels(job_id=job_id, user=view.users.get(job_id, "")), float(row[key]))
                for job_id, row in sorted(view.energy.items())
            ],
        )
    out.family(
        "tuxai_queue_jobs",
        "gauge",
        "Jobs by state.",
        [(labels(state=state), float(count)) for state, count in sorted(view.queue.items())],
    )
    return out.text()
