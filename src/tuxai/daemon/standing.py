"""Why, with numbers (Slurm's sprio): each job's priority terms as the scheduler used them.

The daemon ranks the queue once a pass (``scheduler.priority.queue_order``), hands that very
order to ``decide`` and keeps it here as ``Standing``s: what ``tuxai show`` and ``tuxai ls
--explain`` print are the numbers the decision was made with, not a second computation. Held in
memory only: the next pass after a restart makes them again (a running job's, from its start, is
then gone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tuxai.model.wire import PriorityTerm, Standing
from tuxai.scheduler.decisions import Decision, Reserve
from tuxai.scheduler.priority import FACTORS, Ranked


def standing_of(ranked: Ranked, rank: int, at: float, expected_start: float | None = None) -> Standing:
    """One ranked job's terms (factor × weight each), their total (the score it was ordered by) and rank."""
    terms = tuple(
        PriorityTerm(name, factor, weight, factor * weight)
        for name, factor, weight in zip(FACTORS, ranked.factors, ranked.weights, strict=True)
    )
    return Standing(at, rank, ranked.score, terms, ranked.starving, expected_start)


def standings(
    order: Sequence[Ranked],
    decisions: Iterable[Decision],
    now: float,
    previous: Mapping[int, Standing],
    running: Iterable[int],
) -> dict[int, Standing]:
    """This pass's standings by job id: every job of ``order`` (with its reservation's start), and the
    ``running`` jobs' from ``previous`` (how they stood when they started)."""
    reserved = {d.job_id: d.at for d in decisions if isinstance(d, Reserve)}
    fresh = {int(r.job.id): standing_of(r, rank, now, reserved.get(r.job.id)) for rank, r in enumerate(order, start=1)}
    kept = {job_id: previous[job_id] for job_id in running if job_id in previous and job_id not in fresh}
    return {**kept, **fresh}
