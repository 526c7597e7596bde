"""``create_app(daemon, auth)``: the FastAPI application over a ``Daemon``.

Identity: on the Unix socket, the peer's uid from ``SO_PEERCRED`` (put in the ASGI scope by
``tuxai.api.peercred``); on TCP, a bearer token that stands for the daemon's owner, asked of
every request by ``tuxai.api.guard.Guard`` (which also caps bodies at 1 MiB). Errors, the
request validation's included, are ``{"error", "message", "hint"}`` with the status that
fits. What a caller sees of other users' jobs: ``tuxai.api.views.public_fields``.
``/openapi.json`` describes it all.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, cast

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from tuxai import __version__
from tuxai.api.documented import DocumentedLater, document
from tuxai.api.guard import ErrorResponse, Guard, http_error, validation_message
from tuxai.api.peercred import peer_from_scope
from tuxai.api.views import (
    SubmitBody,
    WireResponse,
    error_responses,
    gpu_view,
    job_detail,
    job_view,
    live_view,
    openapi_document,
    public_fields,
    public_name,
    shown,
)
from tuxai.daemon.arrays import check_after_private
from tuxai.daemon.core import Caller, Daemon
from tuxai.daemon.health import LoopHealth
from tuxai.daemon.jobdirs import log_size, read_log
from tuxai.daemon.limits import limits_view
from tuxai.daemon.slurm import SlurmDaemon
from tuxai.daemon.telemetry import TelemetryLoop
from tuxai.edge.bearer import bearer_ok
from tuxai.errors import JobNotFound, PermissionDenied, TuxaiError, UsageError
from tuxai.model.gang import MAX_NODES
from tuxai.model.job import JobState
from tuxai.model.jobfile import check_environment, spec_from_dict
from tuxai.model.wire import (
    ErrorBody,
    Health,
    Job,
    JobDetail,
    LimitsView,
    PublicJob,
    Stopping,
    Submitted,
    error_body,
    status_of,
    to_json,
)
from tuxai.model.wire_gpus import GpuView, LiveView

STATES = [state.value for state in JobState]
MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger id is no job
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="a job id")]
ON_A_JOB = error_responses(403, 404)
CHANGES_A_JOB = error_responses(403, 404, 409)


@dataclass(frozen=True)
class Auth:
    """Who the daemon runs as, and the TCP bearer token (empty: no TCP)."""

    owner_uid: int
    token: str = ""


async def _caller(request: Request) -> Caller:
    auth: Auth = request.app.state.auth
    peer = peer_from_scope(request.scope)
    if peer is not None:
        uid, gid, groups = peer
        return Caller(_user_name(uid), uid, gid, groups, admin=uid in (0, auth.owner_uid))
    if bearer_ok(request.scope.get("headers") or [], auth.token):
        uid = auth.owner_uid
        return Caller(_user_name(uid), uid, os.getgid(), (), admin=True)
    raise PermissionDenied(
        "no identity: connect through the Unix socket, or send the bearer token on TCP",
        hint="the token is in <home>/token (mode 0600)",
    )


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


CallerDep = Annotated[Caller, Depends(_caller)]


class MetricsApp:
    """The whole application of the Prometheus listener: ``GET /metrics``, and no API route on it
    whatever address it binds (no token is asked there; the API is on the socket and --tcp)."""

    def __init__(self, body: Callable[[], str]) -> None:
        self.body = body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer one HTTP request: the scrape body, else 404."""
        if scope["type"] != "http":
            return
        response: Response
        if scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD"):
            text = await asyncio.to_thread(self.body)
            response = PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
        else:
            body = ErrorBody("UsageError", "this address serves /metrics only", "the API is on the socket")
            response = WireResponse(body, 404)
        await response(scope, receive, send)


def create_app(
    daemon: Daemon,
    auth: Auth,
    telemetry: TelemetryLoop | None = None,
    metrics_address: str = "",
    private_queue: bool = False,
) -> FastAPI:
    """The API of one daemon; ``metrics_address``: where ``MetricsApp`` listens (shown by health);
    ``private_queue``: users see only their own jobs (else the queue is everyone's, ``public_fields``)."""
    app = FastAPI(
        title="tuxai",
        version=__version__,
        description="Jobs on a shared GPU box.",
        responses=error_responses(400, 401, 413, 431, 503, 507),
    )
    app.state.auth = auth
    app.state.shutdown = None  # set by the server: a callable that stops it
    app.add_middleware(Guard, token=auth.token)
    if telemetry is not None:  # /metrics, on its own listener too, names jobs by the same rule
        telemetry.public_name = lambda job: public_name(job, private_queue=private_queue)
    app.router.route_class = DocumentedLater  # response models become schemas only for /openapi.json
    app.openapi = lambda: app.openapi_schema or openapi_document(document(app))  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and all(next(iter(e.get("loc", ("",)))) == "path" for e in errors):
            missing = JobNotFound(request.path_params.get("job_id", "?"))  # not an id the store can hold
            return WireResponse(error_body(missing), 404)
        return ErrorResponse(400, "UsageError", validation_message(errors), "see /openapi.json or docs/jobs.md")

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> ErrorResponse:
        return http_error(exc)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus exposition: dcgm-exporter's GPU series, tuxai's job and queue series."""
        body = telemetry.metrics() if telemetry is not None else ""
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/telemetry", response_model=LiveView)
    def live(caller: CallerDep) -> WireResponse:
        """The latest sample of every GPU with its holders, and the running jobs' usage (for `tuxai top`)."""
        jobs = daemon.store.jobs() if telemetry is not None else []
        return WireResponse(live_view(telemetry, daemon.config.inventory, jobs, caller, private_queue))

    @app.exception_handler(TuxaiError)
    async def _tuxai_error(request: Request, exc: TuxaiError) -> JSONResponse:
        return WireResponse(error_body(exc), status_of(exc))

    @app.get("/v1/health", response_model=Health)
    def health(request: Request) -> WireResponse:
        """The daemon answers: its pid, version, home, machine and loops; 503 while the scheduling loop is stuck."""
        inventory = daemon.config.inventory
        tick: LoopHealth | None = getattr(request.app.state, "tick", None)  # set by the server
        now = time.time()
        stale = tick is not None and tick.stale(now)
        body = Health(
            ok=not stale,
            pid=os.getpid(),
            version=__version__,
            home=str(daemon.config.home),
            inventory=inventory.source,
            gpus=len(inventory.gpus),
            cpus=inventory.cpu.logical_cpus,
            cgroups=daemon.config.cgroups.version,
            cgroups_path=daemon.config.cgroups.path,
            cgroups_problem=daemon.config.cgroups.problem,
            ticks=daemon.ticks,
            last_tick_age_s=round(tick.age_s(now), 3) if tick else None,
            tick_errors=tick.errors if tick else 0,
            metrics=metrics_address,
            sampler=telemetry.telemetry.sampler.method if telemetry else "none",
            cpu_energy=telemetry.telemetry.cpu_method if telemetry else "none",
            cpu_energy_problem=telemetry.telemetry.cpu_problem if telemetry else "",
            telemetry_steps=telemetry.steps if telemetry else 0,
            telemetry_cpu_s=round(telemetry.cpu_s, 6) if telemetry else 0.0,
            telemetry_errors=telemetry.health.errors if telemetry else 0,
            engine="ray" if daemon.cluster is not None else "slurm" if isinstance(daemon, SlurmDaemon) else "local",
        )
        if tick is None or not stale:
            return WireResponse(body)
        stuck = ErrorBody(
            "DaemonError",
            f"the scheduling loop has had no good tick for {tick.age_s(now):.0f} s: no job starts or ends"
            f" ({tick.errors} errors; the last: {tick.last_error})",
            f"see the daemon's log ({daemon.config.home / 'daemon.log'} under `tuxai up --detach`); it retries",
        )
        return WireResponse({**cast(dict[str, object], to_json(body)), **cast(dict[str, object], to_json(stuck))}, 503)

    @app.post("/v1/jobs", status_code=201, response_model=Submitted, responses=error_responses(403))
    async def submit(caller: CallerDep, body: SubmitBody) -> WireResponse:
        """Submit a job: ``{"spec": {job file fields}, "environment": {VAR: value}}`` → ``{"id"}``.

        On the event loop, not a worker thread: the hot path of dispatch (one SQLite commit).
        """
        environment = check_environment(body.environment)
        spec = spec_from_dict(body.spec.model_dump(exclude_unset=True), origin="spec")
        if private_queue and spec.after:
            check_after_private(daemon, spec, caller)  # another user's job is no job to this caller
        if spec.env_lock and daemon.cluster is None:  # only a cluster's nodes build from the text: kept nowhere else
            spec = replace(spec, env_lock="")
        job_id = daemon.submit(spec, caller, environment, time.time())
        return WireResponse(Submitted(job_id), 201)

    @app.get("/v1/jobs", response_model=list[Job | PublicJob])
    def jobs(
        caller: CallerDep,
        state: Annotated[list[str] | None, Query(json_schema_extra={"items": {"enum": STATES}})] = None,
    ) -> WireResponse:
        """The queue, oldest first (optionally only some states): others' jobs with their public fields."""
        try:
            states = [JobState(s) for s in state] if state else None
        except ValueError:
            known = ", ".join(s.value for s in JobState)
            raise UsageError(f"unknown state in {state}", hint=f"states: {known}") from None
        now = time.time()
        views = (shown(j, now, caller, private_queue, daemon.standing.get(j.id)) for j in daemon.store.jobs(states))
        return WireResponse([view for view in views if view is not None])

    @app.get("/v1/jobs/{job_id}", response_model=JobDetail | PublicJob, responses=ON_A_JOB)
    def show(caller: CallerDep, job_id: JobId) -> WireResponse:
        """One job: in full with its history for its owner, its public fields for others."""
        job = daemon.store.get(job_id)
        if public_fields(job, caller, private_queue) is not None:
            view = shown(job, time.time(), caller, private_queue, daemon.standing.get(job_id))
            if view is None:
                raise PermissionDenied(f"job {job_id} belongs to {job.user}", hint="you can only see your own jobs")
            return WireResponse(view)
        energy = telemetry.energy(job_id) if telemetry is not None else None
        view = job_view(job, time.time(), daemon.standing.get(job_id))
        return WireResponse(job_detail(view, daemon.store.events(job_id), energy))

    @app.post("/v1/jobs/{job_id}/cancel", response_model=Job, responses=CHANGES_A_JOB)
    def cancel(caller: CallerDep, job_id: JobId) -> WireResponse:
        """Cancel: at once if waiting; SIGTERM, grace, SIGKILL if running."""
        return WireResponse(job_view(daemon.cancel(job_id, caller, time.time()), time.time()))

    @app.post("/v1/jobs/{job_id}/hold", response_model=Job, responses=CHANGES_A_JOB)
    def hold(caller: CallerDep, job_id: JobId) -> WireResponse:
        """Keep a waiting job from starting."""
        return WireResponse(job_view(daemon.hold(job_id, caller, True), time.time()))

    @app.post("/v1/jobs/{job_id}/release", response_model=Job, responses=CHANGES_A_JOB)
    def release(caller: CallerDep, job_id: JobId) -> WireResponse:
        """Let a held job start again."""
        return WireResponse(job_view(daemon.hold(job_id, caller, False), time.time()))

    @app.get(
        "/v1/jobs/{job_id}/log",
        response_class=Response,
        responses={
            200: {
                "description": "up to 4 MiB of output; X-Tuxai-Next-Offset, -State and -Log-Size say what follows",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            **ON_A_JOB,
        },
    )
    def log(
        caller: CallerDep,
        job_id: JobId,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        rank: Annotated[int, Query(ge=0, le=MAX_NODES)] = 0,
        limit: Annotated[int, Query(ge=0, le=4 * 2**20)] = 4 * 2**20,
    ) -> Response:
        """Up to ``limit`` bytes of the job's output (a multi-node job's node ``rank``) from byte ``offset``
        (its owner's only); headers give the next offset, the state and the output's size now."""
        job = daemon.job(job_id, caller)
        data = read_log(job, offset, limit, rank)  # the job's own regular file, never a link or a FIFO
        headers = {"X-Tuxai-Next-Offset": str(offset + len(data)), "X-Tuxai-State": job.state.value}
        headers["X-Tuxai-Log-Size"] = str(log_size(job, rank))  # where --tail reads back from
        return Response(data, media_type="application/octet-stream", headers=headers)

    @app.get("/v1/gpus", response_model=list[GpuView])
    def gpus(caller: CallerDep) -> WireResponse:
        """Every GPU and who holds it (users and job ids: the point of the question)."""
        outside = telemetry.foreign if telemetry is not None else []
        return WireResponse(gpu_view(daemon.config.inventory, daemon.store.jobs(), caller, private_queue, outside))

    @app.get("/v1/limits", response_model=LimitsView)
    def limits(caller: CallerDep) -> WireResponse:
        """The quotas of the caller's user and groups (root: everyone's) beside their use (``tuxai status``)."""
        return WireResponse(limits_view(daemon.config, daemon.store, caller, time.time()))

    @app.post("/v1/shutdown", response_model=Stopping, responses=error_responses(403))
    def shutdown(caller: CallerDep) -> WireResponse:
        """Stop the daemon (its running jobs go on and are adopted at the next start)."""
        if not caller.admin:
            raise PermissionDenied("only root or the daemon's owner can stop it", hint="ask the admin")
        if app.state.shutdown is not None:
            app.state.shutdown()
        return WireResponse(Stopping(ok=True))

    from tuxai.api.arrays import add_array_routes  # it imports this module's route parts

    add_array_routes(app, daemon, private_queue)
    from tuxai.api.ui_source import mount_ui  # it imports this module's route parts

    mount_ui(app, daemon, telemetry, private_queue)
    return app
