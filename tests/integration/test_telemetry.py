"""Telemetry through a real daemon: energy in `show`, idle and hung jobs, a real Prometheus scraping it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon_helpers import DaemonProcess, finish, shell

PY = sys.executable
BUSY = f"{PY} -c 'import time\nt = time.time()\nwhile time.time() - t < 2: pass'"
FAST = ("--telemetry-period", "0.2")


@pytest.fixture
def fast_daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """Samples every 0.2 s; idle after 1.5 s, hung after 2.5 s; hung jobs are cancelled."""
    daemon = DaemonProcess(
        tmp_path / "home", extra=(*FAST, "--idle-after", "1.5", "--hung-after", "2.5", "--on-hung", "cancel")
    ).start()
    try:
        yield daemon
    finally:
        finish(daemon)


def test_finished_job_shows_gpu_hours_energy_method_and_co2e(fast_daemon: DaemonProcess) -> None:
    job_id = fast_daemon.client.submit(shell(BUSY, gpus=1))
    fast_daemon.wait_all([job_id])
    time.sleep(0.5)
    energy = fast_daemon.job(job_id).energy
    assert energy is not None
    assert energy.methods["gpu" + str(fast_daemon.job(job_id).gpu_indices[0])] == "simulated"
    assert energy.methods["cpu"] == "estimate (10 W per busy CPU, no RAPL)"  # this VM has no RAPL
    wall_s = fast_daemon.job(job_id).wall_s
    assert wall_s is not None and wall_s >= 2.0  # the job busy-waits 2 s (a loaded machine starts it slower)
    assert 1.5 < energy.gpu_hours * 3600 < wall_s + 1.5  # one GPU for the job's time, sampled every 0.5 s
    # A simulated L4 (72 W) draws 15 % of its limit idle and the rest in step with its job's CPU
    # use: ~140 J for ~2 busy seconds on a quiet machine, less where other work takes the CPU.
    # Bound it by what the job really used (its CPU seconds), not by the machine's load.
    gpu_s, cpu_s = energy.gpu_hours * 3600, fast_daemon.job(job_id).cpu_s
    assert cpu_s is not None and cpu_s > 0.2
    gpu_j, cpu_j = energy.gpu_kwh * 3.6e6, energy.cpu_kwh * 3.6e6
    assert 0.5 * (10.8 * gpu_s + 61.2 * cpu_s) < gpu_j < 72 * gpu_s * 1.2
    assert 5 * cpu_s < cpu_j < 15 * gpu_s + 5  # ~10 W per busy CPU, at most the job's time of it
    assert energy.total_kwh == pytest.approx(energy.gpu_kwh + energy.cpu_kwh, rel=1e-3)
    assert energy.co2e_kg == pytest.approx(energy.total_kwh * 475.0 / 1000, rel=1e-3)
    shown = subprocess.run(
        [PY, "-m", "tuxai", "show", str(job_id), "--home", str(fast_daemon.home)], capture_output=True, text=True
    ).stdout
    assert "GPU-hours" in shown and "CO2e" in shown and "simulated" in shown


def test_idle_and_hung_with_real_processes(fast_daemon: DaemonProcess) -> None:
    sleeper = fast_daemon.client.submit(shell("sleep 30", gpus=1, grace="1s"))
    talker = fast_daemon.client.submit(shell("while true; do echo tick; sleep 0.2; done", gpus=1, grace="1s"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        jobs = {j.id: j for j in fast_daemon.client.jobs()}
        if jobs[sleeper].state == "cancelled" and "idle" in jobs[talker].flags:
            break
        time.sleep(0.1)
    jobs = {j.id: j for j in fast_daemon.client.jobs()}
    # The sleeper: idle, then hung (no CPU, GPU or log progress), then cancelled by the policy.
    assert jobs[sleeper].state == "cancelled"
    assert jobs[sleeper].reason == "cancelled: flagged hung (no progress)"
    reasons = [e.reason for e in fast_daemon.job(sleeper).events]
    assert any(r.startswith("flagged idle") for r in reasons) and any("flagged hung" in r for r in reasons)
    # The talker writes its log: idle (its GPU unused) but not hung.
    assert jobs[talker].state == "running" and jobs[talker].flags == ("idle",)
    # The simulated GPU follows the talker's CPU: on a loaded machine one busy sample can clear its idle
    # flag between two reads, so /metrics is read until it shows the flag (it must, within a few samples).
    idle_line = f'tuxai_job_idle{{job_id="{talker}",user="root",name="sh"}} 1'
    deadline = time.monotonic() + 10
    metrics = fast_daemon.client.metrics()
    while idle_line not in metrics and time.monotonic() < deadline:
        time.sleep(0.1)
        metrics = fast_daemon.client.metrics()
    assert idle_line in metrics
    assert f'tuxai_job_hung{{job_id="{talker}",user="root",name="sh"}} 0' in metrics
    fast_daemon.client.cancel(talker)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_real_prometheus_scrapes_the_job_series(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: `make test` installs Debian's package (apt-get install prometheus)"
    daemon = DaemonProcess(tmp_path / "home", extra=FAST).start()
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    target = (daemon.home / "metrics.addr").read_text().strip()
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: tuxai\n    static_configs:\n      - targets: ['{target}']\n"
    )
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        job_id = daemon.client.submit(shell(BUSY.replace("< 2", "< 20"), gpus=1, name="scraped", grace="1s"))
        api = f"http://127.0.0.1:{port}/api/v1/query"
        found: list[dict[str, object]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not found:
            time.sleep(1.0)
            try:
                answer = httpx.get(api, params={"query": 'tuxai_job_running{name="scraped"}'}).json()
            except httpx.HTTPError:
                continue
            found = answer.get("data", {}).get("result", [])
        assert found, "Prometheus never saw the job's series"
        assert found[0]["metric"]["job_id"] == str(job_id) and found[0]["metric"]["user"] == "root"  # type: ignore[index]
        utilization = httpx.get(api, params={"query": "DCGM_FI_DEV_GPU_UTIL"}).json()["data"]["result"]
        assert {r["metric"]["gpu"] for r in utilization} == {"0", "1"}
        targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets").json()["data"]["activeTargets"]
        assert targets[0]["health"] == "up"
    finally:
        server.terminate()
        server.wait(timeout=10)
        finish(daemon)


def test_a_job_with_a_memory_limit_is_measured_by_its_cgroup(fast_daemon: DaemonProcess) -> None:
    from tuxai.hardware.cgroups import detect_cgroups

    if detect_cgroups().version == 0:
        pytest.skip("cgroups are not writable here: jobs with --mem get no cgroup to measure")
    # The memory is held by a process that leaves the job's process group (setsid): only the
    # cgroup still sees it.
    hold = f"setsid -w {PY} -c 'import time; x = bytearray(64 * 2**20); time.sleep(30)'"
    job_id = fast_daemon.client.submit(shell(hold, mem="256MiB", grace="1s"))
    deadline = time.monotonic() + 20
    memory_bytes = 0
    while time.monotonic() < deadline:
        usage = fast_daemon.client.telemetry().usage.get(job_id)
        memory_bytes = usage.memory_bytes if usage else 0
        if memory_bytes > 64 * 2**20:
            break
        time.sleep(0.2)
    assert 64 * 2**20 < memory_bytes < 256 * 2**20, memory_bytes
    fast_daemon.client.cancel(job_id)
