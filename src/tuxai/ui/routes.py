"""The ``/ui`` routes: the login exchange, the pages, the actions (POST forms with a CSRF token), the
live events (server-sent), the stylesheet and script. Everything is read through a ``UiSource``, which
``api`` builds with the API's own rules (``public_fields``; the daemon's checks on every action).

No session → a page redirects to ``/ui/howto`` (how to log in) and data answers 401. The session
cookie is HttpOnly, SameSite=Strict, Path=/ui, and Secure when the request came over https (plain
HTTP on loopback, the daemon's default, would lose a Secure cookie in most browsers).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from tuxai.daemon.config import Caller
from tuxai.errors import JobNotFound, PermissionDenied, TuxaiError
from tuxai.model.job import JobState
from tuxai.model.wire import EnergyTotals, Job, PublicJob
from tuxai.model.wire_gpus import GpuView, LiveView
from tuxai.model.wire_ui import GpuSeries, ServedJob, UsersView
from tuxai.ui import pages
from tuxai.ui.charts import DEFAULT_RANGE, RANGES_S, charts, live_samples, range_links
from tuxai.ui.html import esc, frame, message_page
from tuxai.ui.serving import serving_page
from tuxai.ui.sessions import COOKIE, Session, Sessions, csrf_ok
from tuxai.ui.users import DEFAULT_USERS_RANGE, USER_RANGES, users_page

HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # the login URL carries its token
    "cache-control": "no-store",
}
STATIC = {  # name → (its file under static/, its type); dist/ is built from npm (make ui-assets)
    "ui.css": ("ui.css", "text/css"),
    "ui.js": ("ui.js", "text/javascript"),
    "charts.js": ("charts.js", "text/javascript"),
    "icon.svg": ("icon.svg", "image/svg+xml"),
    "uplot.js": ("dist/uplot.js", "text/javascript"),
    "uplot.css": ("dist/uplot.css", "text/css"),
}
EVENT_PERIOD_S = 1.0
LOG_TAIL_BYTES = 64 * 1024
MAX_WATCHED = 500  # the jobs of one page whose states the live events follow
HOWTO = (
    "Run <code>tuxai ui</code> on this machine as the user you want to be: it prints a one-time link"
    " (good for a minute and a half). The daemon must listen on TCP (<code>tuxai up --tcp 127.0.0.1:8470</code>)."
)


@dataclass(frozen=True)
class UiSource:
    """What the pages read and do, with the API's rules applied for ``caller`` (built by ``api``)."""

    queue: Callable[[Caller], list[PublicJob]]  # every job the caller may see that waits or runs
    job: Callable[[Caller, int], PublicJob]  # a JobDetail for its owner/root; raises JobNotFound, PermissionDenied
    history: Callable[[Caller, str, str, int | None, int | None], list[PublicJob]]  # user, state, before, after id
    first_id: Callable[[float], int]  # the id boundary of a time (jobs before it have smaller ids)
    gpus: Callable[[Caller], list[GpuView]]
    live: Callable[[Caller], LiveView]
    log: Callable[[Caller, int, int], tuple[bytes, int]]  # from offset: data, the next offset (owner/root)
    log_size: Callable[[Caller, int], int]  # the job's output so far, in bytes (owner/root)
    act: Callable[[Caller, int, str], None]  # cancel, hold, release (the daemon checks who)
    states: Callable[[Caller, set[int]], dict[int, str]]  # active jobs' states, and those of ``ids``
    energy: Callable[[list[int]], dict[int, EnergyTotals]]  # of these jobs (one primary-key row each)
    series: Callable[[Sequence[int], float, float], GpuSeries]  # GPUs' telemetry from the tier a range needs
    users: Callable[[Caller, float, float, int], UsersView]  # since, until, bucket: root all, a user itself
    served: Callable[[Caller], list[ServedJob]]  # the caller's serving jobs (root: all) and their models


def _page(title: str, session: Session, body: str, active: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(frame(title, session.caller.user, body, active), status, headers=HEADERS)


def _message(title: str, text: str, status: int) -> HTMLResponse:
    return HTMLResponse(message_page(title, text), status, headers=HEADERS)


def _error(exc: TuxaiError) -> HTMLResponse:
    status = 404 if isinstance(exc, JobNotFound) else 403 if isinstance(exc, PermissionDenied) else 409
    return _message("Not allowed" if status == 403 else "Not done", esc(exc.message), status)


def add_ui_routes(app: FastAPI, source: UiSource, sessions: Sessions) -> None:
    """Mount the dashboard on ``app`` under ``/ui`` (``Guard`` lets ``/ui/`` through: the cookie is its credential)."""

    def session_of(request: Request) -> Session | None:
        return sessions.session(request.cookies.get(COOKIE, ""), time.time())

    def login_first() -> RedirectResponse:
        return RedirectResponse("/ui/howto", 303, headers=HEADERS)

    @app.get("/ui/howto", include_in_schema=False)
    def howto() -> HTMLResponse:
        return _message("Log in to tuxai", HOWTO, 401)

    @app.get("/ui/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        path, media_type = STATIC.get(name, ("", ""))
        file = resources.files("tuxai.ui").joinpath("static", *path.split("/"))
        if not path or not file.is_file():
            return _message("Not found", "no such file", 404)
        return Response(file.read_bytes(), media_type=media_type, headers={"x-content-type-options": "nosniff"})

    @app.get("/ui/login", include_in_schema=False)
    def login(request: Request, token: str = "") -> Response:
        exchanged = sessions.exchange(token, time.time()) if token else None
        if exchanged is None:
            text = "This login link was used already, has expired, or is not one. " + HOWTO
            return _message("Log in to tuxai", text, 401)
        cookie, _ = exchanged
        response = RedirectResponse("/ui/", 303, headers=HEADERS)
        secure = request.url.scheme == "https"
        response.set_cookie(COOKIE, cookie, path="/ui", httponly=True, samesite="strict", secure=secure)
        return response

    @app.post("/ui/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        sessions.logout(request.cookies.get(COOKIE, ""))
        response = login_first()
        response.delete_cookie(COOKIE, path="/ui")
        return response

    @app.get("/ui/", include_in_schema=False)
    def overview(request: Request, span: Annotated[str, Query(alias="range", max_length=8)] = "") -> Response:
        session = session_of(request)
        if session is None:
            return login_first()
        caller = session.caller
        gpus = source.gpus(caller)
        body = pages.overview(gpus, source.live(caller))
        chosen = span if span in RANGES_S else DEFAULT_RANGE  # an unknown range: the default, not an error
        now = time.time()
        history = source.series([g.index for g in gpus], now - RANGES_S[chosen], now)
        live = RANGES_S[chosen] <= 3600  # the 1 s tier: the live samples continue it
        body += range_links("/ui/", chosen) + charts(history, f"the last {chosen}", live)
        return _page("Overview", session, body, "/ui/")

    @app.get("/ui/queue", include_in_schema=False)
    def queue(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return login_first()
        return _page("Queue", session, pages.queue(source.queue(session.caller), time.time()), "/ui/queue")

    @app.get("/ui/users", include_in_schema=False)
    def users(request: Request, span: Annotated[str, Query(alias="range", max_length=8)] = "") -> Response:
        session = session_of(request)
        if session is None:
            return login_first()
        chosen = span if span in USER_RANGES else DEFAULT_USERS_RANGE
        (back_s, bucket_s), now = USER_RANGES[chosen], time.time()
        since = (now - back_s) // bucket_s * bucket_s + bucket_s  # whole buckets, the last one holds now
        view = source.users(session.caller, since, since + back_s, bucket_s)
        body = range_links("/ui/users", chosen, names=USER_RANGES) + users_page(view, session.caller.admin)
        return _page("Users", session, body, "/ui/users")

    @app.get("/ui/serving", include_in_schema=False)
    def serving(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return login_first()
        body = serving_page(source.served(session.caller), session.caller.admin)
        return _page("Serving", session, body, "/ui/serving")

    @app.get("/ui/jobs", include_in_schema=False)
    def jobs(
        request: Request,
        user: Annotated[str, Query(max_length=64)] = "",
        state: Annotated[str, Query(max_length=16)] = "",
        before: Annotated[int | None, Query(ge=1)] = None,
        since: Annotated[str, Query(alias="from", max_length=10)] = "",
        until: Annotated[str, Query(alias="to", max_length=10)] = "",
    ) -> Response:
        session = session_of(request)
        if session is None:
            return login_first()
        if state and state not in {s.value for s in JobState}:
            return _message("Not done", f"unknown state {esc(state)}", 400)
        days = day_bounds(since, until)
        if days is None:
            return _message("Not done", "dates are written YYYY-MM-DD (e.g. 2026-11-27)", 400)
        after = source.first_id(days[0]) if since else None
        if until:  # submitted on that day or before: below the first id of the next day
            before = min(before or 2**63 - 1, source.first_id(days[1]))
        found = source.history(session.caller, user, state, before, after)
        following = ""
        if len(found) >= pages_size():
            query = {"user": user, "state": state, "from": since, "to": until, "before": found[-1].id}
            following = "/ui/jobs?" + urlencode(query)
        energy = source.energy([j.id for j in found if isinstance(j, Job)])  # others' are theirs, as in the API
        body = pages.jobs_page(found, energy, time.time(), user, state, following, (since, until))
        return _page("Jobs", session, body, "/ui/jobs")

    @app.get("/ui/jobs/{job_id}", include_in_schema=False)
    def job(request: Request, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
        session = session_of(request)
        if session is None:
            return login_first()
        try:
            view = source.job(session.caller, job_id)
            tail = _tail(source, session.caller, job_id) if isinstance(view, Job) else None
        except TuxaiError as exc:
            return _error(exc)
        body = pages.job_page(view, time.time(), tail, session.csrf) + _job_charts(source, view)
        return _page(f"Job {job_id}", session, body, "")

    @app.post("/ui/jobs/{job_id}/{verb}", include_in_schema=False)
    async def act(request: Request, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)], verb: str) -> Response:
        session = session_of(request)
        if session is None:
            return _message("Log in to tuxai", HOWTO, 401)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not csrf_ok(session, (form.get("csrf") or [""])[0]):
            return _message("Not allowed", "this form is stale or not ours (CSRF): reload the page", 403)
        if verb not in ("cancel", "hold", "release"):
            return _message("Not found", "no such action", 404)
        try:
            await asyncio.to_thread(source.act, session.caller, job_id, verb)
        except TuxaiError as exc:
            return _error(exc)
        return RedirectResponse(f"/ui/jobs/{job_id}", 303, headers=HEADERS)

    @app.get("/ui/events", include_in_schema=False)
    async def events(
        request: Request,
        job: int = 0,
        offset: Annotated[int, Query(ge=0)] = 0,
        ids: Annotated[str, Query(max_length=4096)] = "",
        gpus: bool = False,
        samples: bool = False,
    ) -> Response:
        session = session_of(request)
        if session is None:
            return _message("Log in to tuxai", HOWTO, 401)
        shown = {int(i) for i in ids.split(",")[:MAX_WATCHED] if i.isdigit() and len(i) < 19}
        watched = shown | ({job} if job else set())
        stream = _events(request, source, session.caller, (job, offset, gpus, samples), watched)
        return StreamingResponse(stream, media_type="text/event-stream", headers={"cache-control": "no-store"})


def day_bounds(since: str, until: str) -> tuple[float, float] | None:
    """The start of day ``since`` and the end of day ``until`` (``YYYY-MM-DD``, local time; "" for none);
    None when either is not a date. Example: ("2026-11-01", "2026-11-01") → a day's two bounds."""
    bounds = []
    for text, extra_days in ((since, 0), (until, 1)):
        if not text:
            bounds.append(0.0)
            continue
        try:
            day = time.strptime(text, "%Y-%m-%d")
        except ValueError:
            return None
        bounds.append(time.mktime((day.tm_year, day.tm_mon, day.tm_mday + extra_days, 0, 0, 0, 0, 0, -1)))
    return bounds[0], bounds[1]


def pages_size() -> int:
    """How many jobs a page of the history holds."""
    return 50


def _job_charts(source: UiSource, view: PublicJob) -> str:
    """The telemetry of the job's GPUs while it ran (its owner's and root's: the job's history)."""
    if not isinstance(view, Job) or view.started_at is None or not view.gpu_indices:
        return ""
    now = time.time()
    until = view.ended_at if view.ended_at is not None else now
    running = view.state is JobState.RUNNING  # its charts go on with each second's sample (the live events)
    return charts(source.series(view.gpu_indices, view.started_at, until + 1), "telemetry of its GPUs", grow=running)


def _tail(source: UiSource, caller: Caller, job_id: int) -> tuple[str, int]:
    """The last ``LOG_TAIL_BYTES`` of the job's output and the offset after them."""
    size = source.log_size(caller, job_id)
    data, end = source.log(caller, job_id, max(0, size - LOG_TAIL_BYTES))
    return data.decode("utf-8", "replace"), end


async def _events(
    request: Request, source: UiSource, caller: Caller, page: tuple[int, int, bool, bool], watched: set[int]
) -> AsyncIterator[str]:
    """``job`` events (``{id, state}``): first the state of each job on the page (``watched``: it may
    have changed since the page was made), then each change of a job the caller sees; ``log`` events
    (new output of the page's job from its offset, its owner's only) while that page is open; ``gpus``
    events (each GPU's utilization, memory and power as written) on the Overview; ``sample`` events (each
    GPU's latest sample, for the live charts) there and, with ``samples``, on a running job's page."""
    job, offset, gpus, samples = page
    known: dict[int, str] = {}
    follow, first = set(watched), True
    stopping: Callable[[], bool] = getattr(request.app.state, "stopping", lambda: False)  # set by the server
    yield "retry: 2000\n\n"
    while not stopping() and not await request.is_disconnected():  # else the server's stop waits for it
        states = await asyncio.to_thread(source.states, caller, follow)
        for job_id, value in states.items():
            if (job_id in watched) if first else known.get(job_id) != value:
                yield f"event: job\ndata: {json.dumps({'id': job_id, 'state': value})}\n\n"
        known = {k: v for k, v in states.items() if not JobState(v).terminal}  # an ended job changes no more
        follow = set(known)
        if job and offset >= 0:
            try:
                data, offset = await asyncio.to_thread(source.log, caller, job, offset)
            except TuxaiError:
                offset = -1  # not the caller's log: no more tries
            else:
                if data:
                    yield f"event: log\ndata: {json.dumps(data.decode('utf-8', 'replace'))}\n\n"
        if gpus or samples:
            live = await asyncio.to_thread(source.live, caller)
            if gpus:
                yield f"event: gpus\ndata: {json.dumps(pages.live_numbers(live))}\n\n"
            yield f"event: sample\ndata: {json.dumps(live_samples(live))}\n\n"  # for the live charts
        first = False
        await asyncio.sleep(EVENT_PERIOD_S)
