"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright's Python package
(``executable_path`` of the system browser: nothing downloads a browser), against a real daemon as root
on the simulated 8-GPU box with jobs running, its own and nobody's. Screenshots go to build/ui/.

Run by ``make test-ui`` (called by ``make test``); needs root (a second user's session is nobody's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.daemon_helpers import REPO, DaemonProcess, finish
from tests.integration.test_identity import as_nobody
from tests.serving_models import mlp_onnx
from tuxai.cli.jobs import serve_command
from tuxai.serving.drift import Reference

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DGX = REPO / "examples" / "inventories" / "dgx-a100.yaml"
SHOTS = REPO / "build" / "ui"
NOBODY = 65534
TICKER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done"]


class Box:
    """The daemon and the jobs every test looks at."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.daemon = daemon
        client = daemon.client
        self.train = client.submit({"name": "train", "command": TICKER, "gpus": 2, "grace": "1s"})
        self.small = client.submit({"name": "small", "command": ["sleep", "300"], "gpus": 1, "grace": "1s"})
        code, answer = as_nobody(daemon.home, "POST", "/v1/jobs", {"spec": {
            "name": "theirs", "command": ["sleep", "300"], "gpus": 1, "workdir": "/tmp", "grace": "1s"}})  # fmt: skip
        assert code == 201, answer
        self.theirs = int(answer["id"])  # type: ignore[index]
        for job in (self.train, self.small, self.theirs):
            wait_state(daemon, job, "running")
        self.slice = client.submit({"name": "slice", "command": ["sleep", "300"], "mig": "1g.10gb", "grace": "1s"})
        wait_state(daemon, self.slice, "running")
        self.big = client.submit({"name": "big", "command": ["true"], "gpus": 7})  # 7 whole GPUs, 4 taken
        self.held = client.submit({"name": "later", "command": ["true"], "hold": True})
        deadline = time.monotonic() + 30
        while not client.job(self.big).reason and time.monotonic() < deadline:
            time.sleep(0.1)


def wait_state(daemon: DaemonProcess, job: int, state: str, timeout_s: float = 30.0) -> None:
    """Until the job is in ``state``."""
    deadline = time.monotonic() + timeout_s
    while daemon.client.job(job).state.value != state:
        assert time.monotonic() < deadline, f"job {job} not {state}: {daemon.client.job(job)}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    """A root daemon (its home reachable by nobody) on the 8-GPU box, listening on TCP, with jobs."""
    if os.getuid() != 0:
        pytest.skip("needs root: a second user's session is nobody's")
    base = Path(tempfile.mkdtemp(prefix="tuxai-ui-"))
    base.chmod(0o755)
    daemon = DaemonProcess(base / "home", DGX, ("--tcp", "127.0.0.1:0", "--idle-after", "2s")).start()
    try:
        yield Box(daemon)
    finally:
        finish(daemon)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (as root it needs --no-sandbox)."""
    with sync_playwright() as playwright:
        yield _launch(playwright)


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)


class Session:
    """A browser context logged in (or not), with the console errors its pages reported."""

    def __init__(self, context: BrowserContext, base: str) -> None:
        self.context, self.base, self.errors = context, base, list[str]()
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> Page:
        """Go to ``path``; the page answered."""
        answer = self.page.goto(self.base + path)
        assert answer is not None
        return self.page

    def shot(self, name: str) -> None:
        """A screenshot under build/ui/ (git-ignored)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _url(box: Box, user: int = 0) -> str:
    if user == NOBODY:
        code, answer = as_nobody(box.daemon.home, "POST", "/v1/ui/login")
        assert code == 200, answer
        return str(answer["url"])  # type: ignore[index]
    return box.daemon.client.ui_login().url


@pytest.fixture
def root(box: Box, browser: Browser) -> Iterator[Session]:
    """Root's logged-in browser."""
    yield from _session(box, browser, 0)


@pytest.fixture
def nobody(box: Box, browser: Browser) -> Iterator[Session]:
    """nobody's logged-in browser."""
    yield from _session(box, browser, NOBODY)


def _session(box: Box, browser: Browser, user: int, **options: object) -> Iterator[Session]:
    url = _url(box, user)
    context = browser.new_context(**options)  # type: ignore[arg-type]
    session = Session(context, url.split("/ui/", 1)[0])
    session.page.goto(url)
    assert session.page.url.endswith("/ui/"), session.page.url
    try:
        yield session
    finally:
        context.close()


def _state(page: Page, job: int) -> str:
    return page.locator(f'[data-state-of="{job}"]').first.inner_text()


def _until_state(page: Page, job: int, state: str) -> None:
    """Until the page's badge of ``job`` reads ``state`` (a function, not a string: the CSP forbids eval)."""
    script = '([job, state]) => document.querySelector(`[data-state-of="${job}"]`).textContent === state'
    page.wait_for_function(script, arg=[job, state], timeout=20000)


def test_ui_overview_shows_each_job_on_its_gpus_with_live_numbers(box: Box, root: Session) -> None:
    page = root.open("/ui/")
    gpus = {j.id: j.gpu_indices for j in box.daemon.client.jobs() if j.state.value == "running"}
    assert set(gpus) == {box.train, box.small, box.theirs, box.slice}
    mig = page.locator("table.gpus tbody tr", has_text="1g.10gb").filter(
        has=page.locator(f'a[href="/ui/jobs/{box.slice}"]')
    )
    assert mig.count() == 1  # the MIG job on its instance's row
    del gpus[box.slice]
    rows = page.locator("table.gpus tbody tr")
    for job, indices in gpus.items():
        for index in indices:
            row = rows.filter(has=page.locator("td", has_text=re.compile(rf"^GPU {index}$")))
            assert row.count() == 1
            assert f"/ui/jobs/{job}" in row.inner_html(), (job, index)
    assert rows.filter(has_text="1g.10gb").count() == 7  # GPU 0's MIG instances, each its own row
    assert page.locator("table.gpus").get_by_text(re.compile(r"\d+ W")).count() >= 8  # power from the sampler
    page.wait_for_selector("body[data-gpus-at]", timeout=15000)  # the live numbers came, no reload
    assert page.locator('[data-gpu="2"][data-kind="power"]').inner_text().endswith(" W")
    root.shot("overview")
    assert root.errors == []


def test_ui_overview_flags_an_idle_job_on_its_gpu(box: Box, root: Session) -> None:
    deadline = time.monotonic() + 30
    while "idle" not in box.daemon.client.telemetry().flags.get(box.small, ()):  # sleep uses no GPU
        assert time.monotonic() < deadline, box.daemon.client.telemetry().flags
        time.sleep(0.2)
    page = root.open("/ui/")
    (index,) = box.daemon.job(box.small).gpu_indices
    row = page.locator("table.gpus tbody tr").filter(has=page.locator("td", has_text=re.compile(rf"^GPU {index}$")))
    assert row.locator(".flag").inner_text() == "idle"
    assert root.errors == []


def test_ui_queue_says_why_each_job_waits_as_tuxai_ls_does(box: Box, root: Session) -> None:
    page = root.open("/ui/queue")
    listed = subprocess.run(
        [sys.executable, "-m", "tuxai", "ls", "--json", "--home", str(box.daemon.home)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    reasons = {job["id"]: job["reason"] for job in json.loads(listed.stdout)}
    row = page.locator("table.queue tbody tr", has=page.locator(f'a[href="/ui/jobs/{box.big}"]'))
    assert reasons[box.big] and row.locator(".reason").inner_text() == reasons[box.big]
    assert "priority" in row.inner_text() and "=" in row.inner_text()  # the terms and their total
    held = page.locator("table.queue tbody tr", has=page.locator(f'a[href="/ui/jobs/{box.held}"]'))
    assert "(held)" in held.inner_text()
    root.shot("queue")
    assert root.errors == []


def test_ui_jobs_and_job_pages_load_and_the_log_tail_grows_live(box: Box, root: Session) -> None:
    page = root.open("/ui/jobs")
    assert page.locator(f'a[href="/ui/jobs/{box.theirs}"]').count() == 1
    train = page.locator("table.jobs tbody tr", has=page.locator(f'a[href="/ui/jobs/{box.train}"]'))
    assert re.fullmatch(r"\d+\.\d{3}", train.locator("td").nth(9).inner_text())  # its GPU-hours, from the telemetry
    # Its mean GPU utilization and peak GPU memory so far, folded from the samples (issue 18 gap 1).
    assert re.fullmatch(r"\d+ %", train.locator("td").nth(7).inner_text())
    assert re.fullmatch(r"[\d.]+ [MG]iB", train.locator("td").nth(8).inner_text())
    root.shot("jobs")
    today = time.strftime("%Y-%m-%d")
    yesterday = time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400))
    page = root.open(f"/ui/jobs?from={today}&to={today}")
    assert page.locator(f'a[href="/ui/jobs/{box.train}"]').count() == 1
    page = root.open(f"/ui/jobs?to={yesterday}")
    assert page.locator("table.jobs").count() == 0 and "no job matches" in page.inner_text("main")
    page = root.open(f"/ui/jobs/{box.train}")
    assert page.locator("#log").inner_text().startswith("tick")
    assert "sh -c 'i=0; while true;" in page.locator("code").inner_text()  # quoted as a shell takes it
    before = len(page.locator("#log").inner_text())
    page.evaluate("window.notReloaded = true")
    page.wait_for_function("n => document.getElementById('log').textContent.length > n", arg=before + 20, timeout=15000)
    assert page.evaluate("window.notReloaded") is True
    root.shot("job")
    assert root.errors == []


def test_ui_a_job_that_ends_changes_state_on_the_open_page(box: Box, root: Session) -> None:
    job = box.daemon.client.submit({"command": ["sleep", "2"]})
    wait_state(box.daemon, job, "running")
    page = root.open(f"/ui/jobs/{job}")
    page.evaluate("window.notReloaded = true")
    assert _state(page, job) == "running"
    _until_state(page, job, "succeeded")
    assert page.evaluate("window.notReloaded") is True
    assert root.errors == []


def test_ui_cancel_from_the_job_page_cancels_it(box: Box, root: Session) -> None:
    job = box.daemon.client.submit({"command": ["sleep", "300"], "grace": "1s"})
    wait_state(box.daemon, job, "running")
    page = root.open(f"/ui/jobs/{job}")
    page.get_by_role("button", name="cancel").click()
    page.wait_for_url(f"**/ui/jobs/{job}")
    _until_state(page, job, "cancelled")
    assert box.daemon.client.job(job).state.value == "cancelled"
    assert root.errors == []


def test_ui_nobody_sees_the_public_queue_and_gets_403_on_roots_job(box: Box, nobody: Session) -> None:
    page = nobody.open("/ui/")
    assert page.locator(f'a[href="/ui/jobs/{box.train}"]').count() == 2  # the queue is public: on both its GPUs
    page = nobody.open("/ui/jobs")
    train = page.locator("table.jobs tbody tr", has=page.locator(f'a[href="/ui/jobs/{box.train}"]'))
    assert [train.locator("td").nth(i).inner_text() for i in range(7, 12)] == ["-"] * 5  # root's use is root's
    page = nobody.open(f"/ui/jobs/{box.theirs}")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf and page.get_by_role("button", name="cancel").count() == 1  # their own job
    page = nobody.open(f"/ui/jobs/{box.train}")
    assert page.locator("#log").count() == 0 and "tick" not in page.content()  # root's log is root's
    assert page.get_by_role("button", name="cancel").count() == 0
    refused = nobody.context.request.post(f"{nobody.base}/ui/jobs/{box.train}/cancel", form={"csrf": csrf})
    assert refused.status == 403
    assert box.daemon.client.job(box.train).state.value == "running"
    nobody.shot("job-as-nobody")
    assert nobody.errors == []


def test_ui_no_token_no_page_and_a_used_token_is_no_login(box: Box, browser: Browser) -> None:
    context = browser.new_context()
    try:
        session = Session(context, "")
        url = _url(box)
        base = url.split("/ui/", 1)[0]
        page = session.open(base + "/ui/queue")
        assert page.url.endswith("/ui/howto") and "tuxai ui" in page.inner_text("main")
        session.shot("login-help")
        page.goto(url)
        assert page.url.endswith("/ui/")
        cookie = next(c for c in context.cookies() if c["name"] == "tuxai_session")
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
        assert page.evaluate("document.cookie") == ""  # no script reads it
    finally:
        context.close()
    again = browser.new_context()
    try:
        page = again.new_page()
        answer = page.goto(url)
        assert answer is not None and answer.status == 401
        assert page.goto(base + "/ui/") is not None and page.url.endswith("/ui/howto")
    finally:
        again.close()


def test_ui_overview_and_job_charts_draw_the_telemetry_tiers(box: Box, root: Session) -> None:
    page = root.open("/ui/?range=15m")
    page.wait_for_selector('body[data-charts="3"]', timeout=15000)  # utilization, memory, power
    assert "from the 1 s tier" in page.inner_text(".charts")
    summary = page.locator("table.chart-summary tbody tr")
    assert summary.count() == 8 and re.search(r"\d+ W", summary.first.inner_text())
    assert page.locator(".chart canvas").count() == 3
    page.wait_for_selector("body[data-chart-points]", state="attached", timeout=15000)  # a live sample appended
    points = int(page.evaluate("document.body.dataset.chartPoints"))
    page.wait_for_function("n => Number(document.body.dataset.chartPoints) > n", arg=points, timeout=15000)
    page = root.open("/ui/?range=7d")
    assert "from the 1 h tier" in page.inner_text(".charts")  # a week reads hours, never the seconds
    page = root.open(f"/ui/jobs/{box.train}")
    page.wait_for_selector('body[data-charts="3"]', timeout=15000)
    gpus = {f"GPU {i}" for i in box.daemon.client.job(box.train).gpu_indices}
    assert {c.inner_text() for c in page.locator("table.chart-summary tbody tr td:first-child").all()} == gpus
    # A running job's charts grow with each second's sample, no reload (issue 18 gap 2).
    page.wait_for_selector("body[data-chart-points]", state="attached", timeout=15000)
    points = int(page.evaluate("document.body.dataset.chartPoints"))
    page.wait_for_function("n => Number(document.body.dataset.chartPoints) > n", arg=points, timeout=15000)
    root.shot("job-charts")
    assert root.errors == []


def test_ui_users_page_shows_root_everyone_and_nobody_itself(box: Box, root: Session, nobody: Session) -> None:
    page = root.open("/ui/users")
    rows = {r.locator("td").first.inner_text(): r for r in page.locator("table.users tbody tr").all()}
    assert {"root", "nobody"} <= set(rows), list(rows)
    assert rows["nobody"].locator("td").nth(3).inner_text() == "1"  # its one GPU, held now
    page.wait_for_selector('body[data-charts="1"]', timeout=15000)
    root.shot("users")
    page = nobody.open("/ui/users")
    users = [c.inner_text() for c in page.locator("table.users tbody tr td:first-child").all()]
    assert users == ["nobody"] and "you see your own use" in page.inner_text("main")
    nobody.shot("users-as-nobody")
    assert root.errors == [] and nobody.errors == []


def test_ui_phone_and_dark_theme(box: Box, browser: Browser) -> None:
    every = (("/ui/", "overview"), ("/ui/users", "users"), (f"/ui/jobs/{box.train}", "job"))
    for name, options, paths in (
        ("phone", {"viewport": {"width": 390, "height": 844}, "is_mobile": True}, every),
        ("dark", {"viewport": {"width": 1280, "height": 900}, "color_scheme": "dark"}, every[::2]),
    ):
        for session in _session(box, browser, 0, **options):
            for path, shot in paths:
                page = session.open(path)
                page.wait_for_selector("body[data-charts]", state="attached", timeout=15000)  # drawn to its width
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= page.viewport_size["width"] + 1 if page.viewport_size else True  # tables scroll
                session.shot(f"{shot}-{name}")
            if name == "dark":
                assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 23)"
            assert session.errors == []


def test_ui_serving_page_shows_a_served_models_requests_and_latency(box: Box, root: Session, nobody: Session) -> None:
    repo = Path(tempfile.mkdtemp(prefix="tuxai-ui-repo-"))
    repo.chmod(0o755)
    mlp_onnx(repo / "mlp" / "1" / "model.onnx", sizes=(4, 2))
    training = np.random.default_rng(17).normal(0, 1, (2000, 4))  # its drift reference, a window of 50 rows
    reference = Reference.from_columns({f"x[{j}]": training[:, j] for j in range(4)})
    (repo / "mlp" / "1" / "drift-reference.json").write_text(json.dumps(reference.to_json()))
    (repo / "mlp" / "config.yaml").write_text("drift_window: 50\n")
    job = box.daemon.client.submit({"name": "served", "command": serve_command(repo), "grace": "1s"})
    try:
        deadline = time.monotonic() + 60
        while (endpoint := box.daemon.client.job(job).endpoint) is None:
            assert time.monotonic() < deadline, box.daemon.client.job(job)
            time.sleep(0.1)
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
        for _ in range(5):
            assert httpx.post(f"{endpoint}/v2/models/mlp/infer", json=body, timeout=30).status_code == 200
        shifted = np.random.default_rng(99).normal(0, 1, (50, 4)).astype(np.float32)
        shifted[:, 2] += 3.0  # x[2] moved: the 50-row window closes drifted on it (issue 18 gap 5)
        rows = {"inputs": [{"name": "x", "shape": [50, 4], "datatype": "FP32", "data": shifted.ravel().tolist()}]}
        assert httpx.post(f"{endpoint}/v2/models/mlp/infer", json=rows, timeout=30).status_code == 200
        page = root.open("/ui/serving")
        row = page.locator("section.served", has=page.locator(f'a[href="/ui/jobs/{job}"]')).locator("tbody tr")
        cells = [c.inner_text() for c in row.first.locator("td").all()]
        assert cells[:4] == ["mlp", "1", "6", "0"] and cells[5].endswith(" ms"), cells
        assert re.fullmatch(r"drift \(x\[2\] PSI \d+\.\d\d\) · 1 window", cells[9]), cells
        root.shot("serving")
        page = nobody.open("/ui/serving")
        assert page.locator(f'a[href="/ui/jobs/{job}"]').count() == 0  # root's endpoint and numbers are root's
        assert root.errors == [] and nobody.errors == []
    finally:
        box.daemon.client.cancel(job)
        shutil.rmtree(repo, ignore_errors=True)


def test_ui_pages_read_without_javascript(box: Box, browser: Browser) -> None:
    for session in _session(box, browser, 0, java_script_enabled=False):
        page = session.open("/ui/")
        assert page.locator("table.chart-summary tbody tr").count() == 8  # each GPU's range in words
        assert page.locator(".chart canvas").count() == 0  # no chart drawn, nothing missing to read
        page = session.open("/ui/users")
        assert page.locator("table.users tbody tr").count() >= 2
        page = session.open(f"/ui/jobs/{box.train}")
        assert page.locator("table.chart-summary tbody tr").count() == 2
        session.shot("job-no-script")
