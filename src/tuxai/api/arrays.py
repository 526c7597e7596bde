"""The routes of job arrays: an array's tasks, and cancel, hold and release of all of them at once.

    GET  /v1/arrays/{job_id}           the tasks, in index order (others' with their public fields)
    POST /v1/arrays/{job_id}/cancel    every task not ended (Slurm's ``scancel 12``)
    POST /v1/arrays/{job_id}/hold      every pending task
    POST /v1/arrays/{job_id}/release

One task alone is a job like any other: ``/v1/jobs/{id}`` (``tuxai.model.array``: ``12_3``).
"""

from __future__ import annotations

import time

from fastapi import FastAPI

from tuxai.api.app import CHANGES_A_JOB, ON_A_JOB, CallerDep, JobId
from tuxai.api.views import WireResponse, job_view, shown
from tuxai.daemon.arrays import cancel_array, hold_array, task_counts, tasks
from tuxai.daemon.core import Daemon
from tuxai.errors import JobNotFound
from tuxai.model.array import ArrayCounts
from tuxai.model.wire import Job, PublicJob


def add_array_routes(app: FastAPI, daemon: Daemon, private_queue: bool) -> None:
    """Add the array routes to ``app`` (``create_app``'s)."""

    @app.get("/v1/arrays/{job_id}", response_model=list[Job | PublicJob], responses=ON_A_JOB)
    def array(caller: CallerDep, job_id: JobId) -> WireResponse:
        """The tasks of an array, in index order; 404 if ``job_id`` is no array."""
        now = time.time()
        views = [shown(task, now, caller, private_queue) for task in tasks(daemon, job_id)]
        if not views or any(view is None for view in views):
            raise JobNotFound(job_id)
        return WireResponse(views)

    @app.get("/v1/arrays/{job_id}/counts", response_model=ArrayCounts, responses=ON_A_JOB)
    def array_counts(caller: CallerDep, job_id: JobId) -> WireResponse:
        """An array's indices and how many of its tasks are in each state (public, as its tasks' states)."""
        found = task_counts(daemon, job_id)
        if found is None or shown(daemon.store.get(job_id), time.time(), caller, private_queue) is None:
            raise JobNotFound(job_id)
        return WireResponse(found)

    @app.post("/v1/arrays/{job_id}/cancel", response_model=list[Job], responses=CHANGES_A_JOB)
    def cancel(caller: CallerDep, job_id: JobId) -> WireResponse:
        """Cancel every task not ended: at once if waiting; SIGTERM, grace, SIGKILL if running."""
        now = time.time()
        return WireResponse([job_view(task, now) for task in cancel_array(daemon, job_id, caller, now)])

    @app.post("/v1/arrays/{job_id}/hold", response_model=list[Job], responses=CHANGES_A_JOB)
    def hold(caller: CallerDep, job_id: JobId) -> WireResponse:
        """Keep every pending task from starting."""
        return WireResponse([job_view(task, time.time()) for task in hold_array(daemon, job_id, caller, True)])

    @app.post("/v1/arrays/{job_id}/release", response_model=list[Job], responses=CHANGES_A_JOB)
    def release(caller: CallerDep, job_id: JobId) -> WireResponse:
        """Let every held task start."""
        return WireResponse([job_view(task, time.time()) for task in hold_array(daemon, job_id, caller, False)])
