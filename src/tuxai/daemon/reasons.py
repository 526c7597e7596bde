"""Why each waiting job waits, in words: the one wording ``tuxai ls``, ``show`` and the queue read.

Pure: from one pass's decisions, the waiting jobs and the dependency gate; the caller stores the
reasons that changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tuxai.model.job import JobRecord, JobSpec
from tuxai.scheduler.decisions import Decision, Limited, Reject, Reserve, Start
from tuxai.scheduler.eligibility import Verdict


def waiting_reasons(
    decisions: Sequence[Decision],
    waiting: Sequence[JobRecord],
    gated: Verdict,
    now: float,
    default_time_limit_s: float,
    outside_note: Callable[[JobSpec], str],
) -> dict[int, str]:
    """Each waiting job that neither started nor ended this pass → why it waits.

    The head of the queue says it is next in line (and when it starts, where the estimate rests
    on real time limits); the rest wait behind it, or for their dependencies, a quota, a retry's
    backoff, a release; ``outside_note`` adds what GPUs busy outside tuxai keep from a job.
    """
    reasons: dict[int, str] = {}
    head: str | None = None
    for decision in decisions:
        job_id = int(decision.job_id)
        if isinstance(decision, Reserve):
            head = head or decision.job_id
            why = str(decision.explanation.get("reason", "waiting for resources"))
            wait = max(0.0, decision.at - now)
            # An estimate from default time limits (jobs without --time) says nothing: leave it out.
            known = wait < default_time_limit_s * 0.99
            reasons[job_id] = f"{why}; next in line" + (f", starts within {wait:.0f} s" if known else "")
        elif isinstance(decision, Limited):
            reasons[job_id] = decision.reason
    decided = {int(d.job_id) for d in decisions if isinstance(d, Start | Reject)}
    for job in waiting:
        if job.id in decided or job.id in reasons or job.id in gated.never:
            continue
        if job.held:
            reasons[job.id] = "held (`tuxai release` lets it start)"
        elif job.id in gated.waits:
            reasons[job.id] = gated.waits[job.id]
        elif job.eligible_at > now:
            reasons[job.id] = f"{job.reason.split(';')[0]}; retry in {job.eligible_at - now:.0f} s"
        else:
            reasons[job.id] = f"waiting for resources behind job {head}" if head else "waiting for resources"
            note = outside_note(job.spec)
            reasons[job.id] += f"; {note}" if note else ""
    return reasons
