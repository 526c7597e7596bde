"""The Users page: each user's fair-share usage (the decayed GPU-hours the queue's fair-share term
weighs), the GPUs they hold now, and their GPU-hours over the range, as a table that reads without a
script and a chart of GPU-hours per bucket. Root sees every user, a user itself (as ``/v1/limits``).
"""

from __future__ import annotations

from tuxai.model.wire_ui import UsersView
from tuxai.ui.charts import figures
from tuxai.ui.html import esc, span, table

# A range reads every job that ended in it (the jobs_ended index): a year of 100,000 jobs is too many for a page.
USER_RANGES = {"1d": (86400, 3600), "7d": (7 * 86400, 86400), "30d": (30 * 86400, 86400)}
DEFAULT_USERS_RANGE = "30d"
BUCKET_NAMES = {3600: "hour", 86400: "day", 7 * 86400: "week"}


def users_page(view: UsersView, admin: bool) -> str:
    """The Users page's body (the range links are the caller's to add)."""
    total = sum(u.fair_share_gpu_hours for u in view.users) or 1.0
    rows = [
        (
            esc(u.user),
            f"{u.fair_share_gpu_hours:.2f}",
            f'<meter min=0 max=1 value="{u.fair_share_gpu_hours / total:.3f}"></meter>'
            f" {u.fair_share_gpu_hours / total:.0%}",
            f"{u.running_gpus:g}",
            f"{sum(u.gpu_hours):.2f}",
        )
        for u in view.users
    ]
    headers = ("user", "fair-share GPU-h", "share", "GPUs held now", "GPU-h in range")
    note = "" if admin else "<p class=note>you see your own use; root sees everyone's</p>"
    half_life = f"<p class=note>fair share decays by half every {esc(span(view.half_life_s))}</p>"
    payload = {
        "labels": [u.user for u in view.users],
        "at": [list(view.starts) for _ in view.users],
        "gpu_hours": [list(u.gpu_hours) for u in view.users],
    }
    chart = (
        figures(
            payload, (("gpu_hours", f"GPU-hours per {BUCKET_NAMES.get(view.bucket_s, span(view.bucket_s))}", "GPU-h"),)
        )
        if view.users
        else ""
    )
    body = table(headers, rows, "no GPU use in this range", "users bars")
    return note + body + half_life + chart
