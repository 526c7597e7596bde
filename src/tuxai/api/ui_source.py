"""The dashboard mounted on the API: its ``UiSource`` built from the daemon with the API's own rules
(``views.shown`` / ``public_fields`` for what is seen, the daemon's checks for what is done), and
``POST /v1/ui/login``, which makes a one-time login link for whoever asks over the Unix socket.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI, Request

from tuxai.api.app import CallerDep
from tuxai.api.peercred import peer_from_scope
from tuxai.api.ui_serving import ServedReader
from tuxai.api.views import WireResponse, error_responses, gpu_view, job_detail, job_view, live_view, shown
from tuxai.daemon.config import Caller
from tuxai.daemon.core import Daemon
from tuxai.daemon.jobdirs import read_log
from tuxai.daemon.telemetry import TelemetryLoop
from tuxai.errors import PermissionDenied, UsageError
from tuxai.model.job import JobRecord, JobState
from tuxai.model.wire import EnergyTotals, PublicJob, from_json
from tuxai.model.wire_gpus import GpuView
from tuxai.model.wire_ui import UiLogin, UsersView, UserUse
from tuxai.scheduler.snapshot import decay_usage
from tuxai.store.charts import SeriesCache
from tuxai.store.history import first_submitted, page
from tuxai.store.usage_history import buckets, gpu_hours_by_user
from tuxai.ui.routes import UiSource, add_ui_routes, pages_size
from tuxai.ui.sessions import TOKEN_TTL_S, Sessions

ACTIVE = [JobState.PENDING, JobState.REQUEUED, JobState.RUNNING]


def mount_ui(app: FastAPI, daemon: Daemon, telemetry: TelemetryLoop | None, private_queue: bool) -> None:
    """Add ``/ui`` and ``POST /v1/ui/login`` to the API of ``daemon``."""
    sessions = Sessions()
    add_ui_routes(app, source(daemon, telemetry, private_queue), sessions)

    @app.post("/v1/ui/login", response_model=UiLogin, responses=error_responses(403, 409))
    def ui_login(request: Request, caller: CallerDep) -> WireResponse:
        """A one-time link to the dashboard for the caller (over the Unix socket only: the OS says who)."""
        if peer_from_scope(request.scope) is None:
            raise PermissionDenied(
                "a dashboard login is asked over the Unix socket", hint="run `tuxai ui` on the machine"
            )
        address = tcp_address(daemon.config.home)
        if not address:
            raise UsageError(
                "the daemon does not listen on TCP: the dashboard is served there",
                hint="start it with `tuxai up --tcp 127.0.0.1:8470`",
            )
        token = sessions.issue(caller, time.time())
        return WireResponse(UiLogin(f"http://{address}/ui/login?token={token}", TOKEN_TTL_S))


def tcp_address(home: Path) -> str:
    """``HOST:PORT`` of the daemon's TCP listener (its ``tcp.addr``), "" without one."""
    with contextlib.suppress(OSError):
        return (home / "tcp.addr").read_text().strip()
    return ""


def source(daemon: Daemon, telemetry: TelemetryLoop | None, private_queue: bool) -> UiSource:
    """The pages' reads and actions for ``daemon``, each with the API's rule for its caller."""

    def visible(jobs: Iterable[JobRecord], caller: Caller) -> list[PublicJob]:
        now = time.time()
        views = (shown(j, now, caller, private_queue, daemon.standing.get(j.id)) for j in jobs)
        return [v for v in views if v is not None]

    def job(caller: Caller, job_id: int) -> PublicJob:
        record = daemon.store.get(job_id)
        if caller.admin or caller.uid == record.uid:
            energy = telemetry.energy(job_id) if telemetry is not None else None
            view = job_view(record, time.time(), daemon.standing.get(job_id))
            return job_detail(view, daemon.store.events(job_id), energy)
        public = shown(record, time.time(), caller, private_queue, daemon.standing.get(job_id))
        if public is None:
            raise PermissionDenied(f"job {job_id} belongs to {record.user}", hint="you can only see your own jobs")
        return public

    def history(caller: Caller, user: str, state: str, before: int | None, after: int | None) -> list[PublicJob]:
        if private_queue and not caller.admin:
            user = caller.user  # the others' jobs are not theirs to see
        states = [JobState(state)] if state else []
        return visible(page(daemon.store, states, user, before, pages_size(), after), caller)

    def log(caller: Caller, job_id: int, offset: int) -> tuple[bytes, int]:
        data = read_log(daemon.job(job_id, caller), offset, 2**20)
        return data, offset + len(data)

    def log_size(caller: Caller, job_id: int) -> int:
        record = daemon.job(job_id, caller)
        with contextlib.suppress(OSError):
            info = os.stat(record.log_path, follow_symlinks=False) if record.log_path else None
            return info.st_size if info is not None and stat.S_ISREG(info.st_mode) else 0
        return 0

    def act(caller: Caller, job_id: int, verb: str) -> None:
        if verb == "cancel":
            daemon.cancel(job_id, caller, time.time())
        else:
            daemon.hold(job_id, caller, verb == "hold")

    def states(caller: Caller, ids: set[int]) -> dict[int, str]:
        found = {j.id: j for j in daemon.store.jobs(ACTIVE)}
        for job_id in ids - found.keys():
            with contextlib.suppress(Exception):
                found[job_id] = daemon.store.get(job_id)
        return {v.id: v.state.value for v in visible(found.values(), caller)}

    def gpus(caller: Caller) -> list[GpuView]:
        outside = telemetry.foreign if telemetry is not None else []
        return gpu_view(daemon.config.inventory, daemon.store.jobs([JobState.RUNNING]), caller, private_queue, outside)

    def users(caller: Caller, since: float, until: float, bucket_s: int) -> UsersView:
        now, only = time.time(), "" if caller.admin else caller.user  # others' use is root's to see
        hours = gpu_hours_by_user(daemon.store, since, until, bucket_s, now, only)
        half_life = daemon.config.scheduler.half_life_s
        fair = {u: decay_usage(k.gpu_seconds, now - k.updated_at, half_life) for u, k in daemon.store.usage().items()}
        held: dict[str, float] = {}
        for running in daemon.store.jobs([JobState.RUNNING]):
            held[running.user] = held.get(running.user, 0.0) + running.spec.request.gpu_equivalents
        starts = buckets(since, until, bucket_s)
        names = sorted(n for n in {*hours, *fair, *held} if not only or n == only)
        none = [0.0] * len(starts)
        rows = (UserUse(n, fair.get(n, 0.0) / 3600, held.get(n, 0.0), tuple(hours.get(n, none))) for n in names)
        return UsersView(since, until, bucket_s, starts, half_life, tuple(rows))

    def energy(ids: list[int]) -> dict[int, EnergyTotals]:
        used = telemetry.energies(ids) if telemetry is not None else {}  # two reads for the page, not two a job
        return {job_id: from_json(EnergyTotals, row, "energy") for job_id, row in used.items()}

    charts = SeriesCache(daemon.store)  # the settled buckets of recent charts: a reload reads the last minutes
    return UiSource(
        queue=lambda caller: visible(daemon.store.jobs(ACTIVE), caller),
        job=job,
        history=history,
        gpus=gpus,
        live=lambda caller: live_view(
            telemetry, daemon.config.inventory, daemon.store.jobs([JobState.RUNNING]), caller, private_queue
        ),
        log=log,
        log_size=log_size,
        act=act,
        states=states,
        energy=energy,
        series=lambda gpus, since, until: charts.series(gpus, since, until, time.time()),
        users=users,
        first_id=lambda at: first_submitted(daemon.store, at),
        served=ServedReader(daemon).served,
    )
