"""The dashboard's pages as pure functions of the wire types: what the API shows, as HTML.

Who may see what was decided before these run (``api.views.shown``): a ``PublicJob`` here is all
the caller may read of it, a ``Job`` or ``JobDetail`` is the caller's own (or root's view).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from tuxai.model.job import JobState
from tuxai.model.wire import EnergyTotals, Job, JobDetail, PublicJob
from tuxai.model.wire_gpus import GpuHolder, GpuView, LiveGpu, LiveView
from tuxai.ui.html import ago, esc, job_link, size, span, state, table

WAITING = (JobState.PENDING, JobState.REQUEUED)
KINDS = ("util", "memory", "power")


def _holders(holders: Sequence[GpuHolder], flags: dict[int, tuple[str, ...]], mig: str | None = None) -> str:
    shown = [h for h in holders if h.mig == mig] if mig is not None else list(holders)
    if not shown:
        return '<span class="free">free</span>'
    parts = []
    for h in shown:
        share = "" if h.share >= 1 or h.mig is not None else f" ({h.share:.0%})"  # a MIG instance is whole
        flagged = "".join(f' <span class="flag">{esc(f)}</span>' for f in flags.get(h.job, ()))
        name = f" {esc(h.name)}" if h.name else ""
        parts.append(f'<span class="holder">{job_link(h.job)} {esc(h.user)}{name}{share}{flagged}</span>')
    return " ".join(parts)


def live_numbers(live: LiveView) -> dict[int, dict[str, str]]:
    """Each GPU's utilization, memory and power as the Overview writes them (the live events' ``gpus``)."""
    return {g.index: dict(zip(KINDS, _live(g), strict=True)) for g in live.gpus}


def _live(sample: LiveGpu | None) -> tuple[str, str, str]:
    if sample is None:
        return "-", "-", "-"
    util = "-" if sample.util_pct is None else f"{sample.util_pct:.0f} %"
    memory = f"{size(sample.memory_used_bytes)} / {size(sample.memory_total_bytes)}"
    power = "-" if sample.power_w is None else f"{sample.power_w:.0f} W"
    return util, memory, power


def overview(gpus: Sequence[GpuView], live: LiveView) -> str:
    """Every GPU (and MIG instance, and slice) with its live sample and who holds it; idle jobs flagged."""
    samples = {g.index: g for g in live.gpus}
    flags = {job: tuple(f) for job, f in live.flags.items()}
    rows = []
    for gpu in gpus:
        util, memory, power = _live(samples.get(gpu.index))
        holders = [h for h in gpu.holders if h.mig is None]
        outside = ", ".join(f"pid {p.pid} {esc(p.user or '?')}" for p in gpu.outside)
        held = _holders(holders, flags) + (f' <span class="flag">outside tuxai: {outside}</span>' if outside else "")
        numbers = (
            f'<span data-gpu="{gpu.index}" data-kind="{kind}">{esc(text)}</span>'
            for kind, text in zip(KINDS, (util, memory, power), strict=True)
        )
        rows.append((f"GPU {gpu.index}", esc(gpu.name), held, *numbers))
        for mig in gpu.mig_instances:
            what = f"{esc(mig.profile or 'MIG')} · {size(mig.memory_total_bytes)}"
            rows.append((f"└ {gpu.index}/{mig.index}", what, _holders(gpu.holders, flags, mig.uuid), "", "", ""))
    sampler = f"<p class=note>telemetry: {esc(live.sampler)}</p>"
    return (
        table(("GPU", "model", "held by", "util", "memory", "power"), rows, "no GPU on this machine", "gpus") + sampler
    )


def queue(jobs: Sequence[PublicJob], now: float) -> str:
    """Waiting jobs in the scheduler's decision order: rank, why each waits, its priority terms."""
    waiting = [j for j in jobs if j.state in WAITING]
    ranked = sorted((j for j in waiting if j.standing), key=lambda j: j.standing.rank if j.standing else 0)
    rows = []
    for job in ranked + [j for j in waiting if j.standing is None]:
        standing = job.standing
        rank = "-" if standing is None else f"{standing.rank}{'*' if standing.first else ''}"
        terms = (
            " + ".join(f"{esc(t.name)} {t.value:.1f}" for t in standing.terms) + f" = {standing.total:.1f}"
            if standing
            else "-"
        )
        start = (
            "-" if standing is None or standing.expected_start is None else f"in {span(standing.expected_start - now)}"
        )
        held = " (held)" if job.held else ""
        rows.append(
            (
                esc(rank),
                job_link(job.id),
                esc(job.user),
                esc(job.name),
                state(job.id, job.state) + held,
                f'<span class="reason">{esc(job.reason)}</span>',
                terms,
                esc(start),
                ago(job.submitted_at, now),
            )
        )
    headers = ("rank", "job", "user", "name", "state", "waits for", "priority terms", "starts by", "submitted")
    return table(headers, rows, "no job waiting", "queue")


def jobs_page(
    jobs: Sequence[PublicJob],
    energy: Mapping[int, EnergyTotals],
    now: float,
    user: str,
    chosen: str,
    next_page: str,
    days: tuple[str, str] = ("", ""),
) -> str:
    """One page of the history, newest first, with its filter form, the energy of the caller's own
    jobs (mean GPU utilization, peak GPU memory, GPU-hours, kWh, CO2e: others' are theirs) and the link
    to the next page."""
    options = "".join(
        f'<option value="{esc(s.value)}"{" selected" if s.value == chosen else ""}>{esc(s.value)}</option>'
        for s in JobState
    )
    form = (
        '<form method=get class=filters><label>user <input name=user value="' + esc(user) + '"></label>'
        f'<label>state <select name=state><option value="">any</option>{options}</select></label>'
        f'<label>submitted from <input type=date name=from value="{esc(days[0])}"></label>'
        f'<label>to <input type=date name=to value="{esc(days[1])}"></label>'
        "<button>filter</button></form>"
    )
    rows = [
        (
            job_link(j.id),
            esc(j.user),
            esc(j.name),
            state(j.id, j.state),
            esc(", ".join(str(i) for i in j.gpu_indices) or "-"),
            ago(j.submitted_at, now),
            esc(span(j.ran_s)),
            *_energy(energy.get(j.id)),
            esc(j.reason),
        )
        for j in jobs
    ]
    more = f'<p><a rel=next href="{esc(next_page)}">older jobs →</a></p>' if next_page else ""
    headers = (
        *("job", "user", "name", "state", "GPUs", "submitted", "ran"),
        *("GPU util", "peak memory", "GPU-h", "kWh", "kg CO2e", "reason"),
    )
    return form + table(headers, rows, "no job matches", "jobs") + more


def _energy(used: EnergyTotals | None) -> tuple[str, str, str, str, str]:
    """The GPU use and energy columns of the caller's own job: mean GPU utilization, peak GPU memory,
    GPU-hours, kWh, CO2e (``-``: not the caller's, or not measured)."""
    if used is None:
        return "-", "-", "-", "-", "-"
    util = "-" if used.gpu_util_mean_pct is None else f"{used.gpu_util_mean_pct:.0f} %"
    peak = "-" if used.gpu_memory_peak_bytes is None else size(int(used.gpu_memory_peak_bytes))
    return util, peak, f"{used.gpu_hours:.3f}", f"{used.total_kwh:.4f}", f"{used.co2e_kg:.4f}"


def job_page(job: PublicJob, now: float, log_tail: tuple[str, int] | None, csrf: str) -> str:
    """One job: its facts, history and energy (its owner's and root's), the log tail and the actions."""
    facts = [
        ("state", state(job.id, job.state) + (" (held)" if job.held else "")),
        ("name", esc(job.name) or "-"),
        ("user", esc(job.user)),
        ("reason", f'<span class="reason">{esc(job.reason) or "-"}</span>'),
        ("GPUs", esc(", ".join(str(i) for i in job.gpu_indices) or "-")),
        ("submitted", ago(job.submitted_at, now)),
        ("waited", esc(span(job.waited_s))),
        ("ran", esc(span(job.ran_s))),
        ("exit", esc("-" if job.exit_code is None else job.exit_code)),
    ]
    if isinstance(job, Job):
        facts.append(("command", f"<code>{esc(shlex.join(job.command))}</code>"))  # as a shell would take it
    parts = [
        f'<div hidden data-job-page="{job.id}"></div><dl class="facts">'
        + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts)
        + "</dl>"
    ]
    if isinstance(job, Job):
        parts.append(_actions(job, csrf))
    if isinstance(job, JobDetail):
        if job.energy is not None:
            e = job.energy
            parts.append(f"<p>energy: {e.total_kwh:.4f} kWh, {e.co2e_kg:.4f} kg CO2e, {e.gpu_hours:.3f} GPU-hours</p>")
        events = [
            (ago(e.at, now), esc(e.from_state.value if e.from_state else "-"), esc(e.to_state.value), esc(e.reason))
            for e in job.events
        ]
        parts.append("<h2>events</h2>" + table(("when", "from", "to", "reason"), events, "no event"))
    if log_tail is not None:
        text, end = log_tail
        parts.append(
            f'<h2>log</h2><pre class="log" id="log" data-log-of="{job.id}" data-offset="{end}">{esc(text)}</pre>'
        )
    return "".join(parts)


def _actions(job: Job, csrf: str) -> str:
    verbs = []
    if not job.state.terminal:
        verbs.append("cancel")
    if job.state in WAITING:
        verbs.append("release" if job.held else "hold")
    buttons = "".join(
        f'<form method=post action="/ui/jobs/{job.id}/{verb}"><input type=hidden name=csrf value="{esc(csrf)}">'
        f'<button name=verb value="{verb}">{verb}</button></form>'
        for verb in verbs
    )
    return f'<div class="actions">{buttons}</div>' if buttons else ""
