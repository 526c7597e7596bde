"""The page frame and the small helpers every page uses; every text that reaches HTML is escaped here."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable

from tuxai.model.job import JobState

HEAD = '<link rel=stylesheet href="/ui/static/ui.css"><link rel=icon href="/ui/static/icon.svg">'
NAV = (
    ("/ui/", "Overview"),
    ("/ui/queue", "Queue"),
    ("/ui/jobs", "Jobs"),
    ("/ui/users", "Users"),
    ("/ui/serving", "Serving"),
)


def esc(value: object) -> str:
    """``value`` as HTML text (quotes escaped too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def state(job_id: int, value: JobState) -> str:
    """A job's state as a badge the live script updates (``data-state-of``)."""
    return f'<span class="state state-{esc(value.value)}" data-state-of="{job_id}">{esc(value.value)}</span>'


def job_link(job_id: int) -> str:
    """A link to a job's page."""
    return f'<a href="/ui/jobs/{job_id}">{job_id}</a>'


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], empty: str, css: str = "") -> str:
    """A table of already-escaped cells (each header escaped here); ``empty``: what to say without rows."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    head = f'<table class="{esc(css)}"><thead><tr>{head}</tr></thead>'
    return f'<div class="scroll">{head}<tbody>{body}</tbody></table></div>'


def ago(at: float | None, now: float) -> str:
    """``at`` as a short span before ``now`` ("3 min ago"), with the exact time in a tooltip."""
    if at is None:
        return "-"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    return f'<time datetime="{esc(stamp)}" title="{esc(stamp)}">{esc(span(now - at))} ago</time>'


def span(seconds: float | None) -> str:
    """A duration in the unit that reads best."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds / 86400:.1f} d"


def size(value: int | None) -> str:
    """Bytes in GiB (MiB under one GiB)."""
    if value is None:
        return "-"
    return f"{value / 2**30:.1f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def frame(title: str, user: str, body: str, active: str) -> str:
    """A whole page: the head (our stylesheet and script only), the navigation, ``body`` (HTML)."""
    links = "".join(
        f'<a href="{href}"{" aria-current=page" if href == active else ""}>{esc(name)}</a>' for href, name in NAV
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · tuxai</title>"
        f'{HEAD}<script src="/ui/static/ui.js" defer></script></head>'
        f'<body><header><strong>tuxai</strong><nav>{links}</nav><span class="who">{esc(user)}</span>'
        '<span class="live" id="live" hidden>live</span></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def message_page(title: str, text: str) -> str:
    """A page with no navigation (the login help, an error): one paragraph of ``text`` (HTML)."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · tuxai</title>{HEAD}</head>"
        f"<body><main><h1>{esc(title)}</h1><p>{text}</p></main></body></html>"
    )
