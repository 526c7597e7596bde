"""tuxai on a real systemd + cgroup v2 host: a Debian 12 guest under qemu, the daemon a systemd service.

This machine and CI are cgroup v1 without systemd; most GPU servers run systemd on pure cgroup v2.
One boot (module fixture) runs every scenario of ``guest/scenarios.py`` against the daemon started
from ``packaging/tuxai.service``; each test judges one behaviour from the facts it left. Run with
``make test-vm`` (docs/testing.md). A missing qemu or a failed image build is an error, not a skip.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vm.image import cache_dir, guest_image
from tests.vm.machine import GUEST_CPUS, GuestRun, run_directory, run_guest

pytestmark = [pytest.mark.vm, pytest.mark.timeout(1500)]  # a cold image build (~4 min) and one boot (at most 10)


@pytest.fixture(scope="module")
def guest() -> GuestRun:
    """One boot of the guest with the current source tree; its facts (its files stay in <cache>/run-*)."""
    image = guest_image()
    work = run_directory(cache_dir())
    run = run_guest(image, work)
    took = f"built in {image.build_s:.0f} s" if image.build_s else "cached"
    print(f"\ntuxai-vm: image {took}, boot + scenarios {run.boot_s:.0f} s; console and logs in {work}")
    return run


def _job(facts: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = facts["job"]
    return job


def _shown(job: dict[str, Any]) -> str:
    keep = ("id", "state", "reason", "exit_code", "signal", "oom_killed", "cpus", "gpu_indices", "attempt", "output")
    return json.dumps({k: job.get(k) for k in keep}, indent=1)


def _printed(job: dict[str, Any], key: str) -> dict[str, Any]:
    found = [line for line in job["printed"] if key in line]
    assert found, f"the job printed no {key!r}:\n{_shown(job)}"
    line: dict[str, Any] = found[0]
    return line


def test_guest_runs_tuxai_as_a_systemd_service_on_cgroup_v2(guest: GuestRun) -> None:
    log = guest.files.get("run.log", "")
    assert "cgroup2fs on /sys/fs/cgroup" in log, log
    assert f"{GUEST_CPUS} CPUs" in log, log
    service = guest.result["service"]
    assert service["ControlGroup"] == "/system.slice/tuxai.service", service
    assert service["KillMode"] == "process" and service["Delegate"] == "yes", service
    assert str(guest.result["health"]["pid"]) == service["MainPID"], "the daemon is the unit's main process"


def test_memory_limit_kills_the_job_at_the_limit(guest: GuestRun) -> None:
    job = _job(guest.scenario("memory"))
    assert not any("allocated" in line for line in job["printed"]), f"200 MiB fitted under 64 MiB:\n{_shown(job)}"
    assert job["state"] == "failed", _shown(job)
    assert job["oom_killed"] is True, _shown(job)
    assert "out of memory" in job["reason"], _shown(job)


def test_job_does_not_inherit_the_daemons_oom_protection(guest: GuestRun) -> None:
    """A unit's OOMScoreAdjust= passes to every process the daemon starts: a job filling the host would be spared."""
    said = _printed(_job(guest.scenario("memory")), "oom_score_adj")
    assert said["oom_score_adj"] == "0", said


def test_job_may_lock_memory(guest: GuestRun) -> None:
    """Jobs inherit the service's rlimits: RDMA (NCCL over InfiniBand) needs memlock unlimited, systemd gives 8 MiB."""
    said = _printed(_job(guest.scenario("memory")), "memlock")
    assert said["memlock"] == -1, f"RLIMIT_MEMLOCK {said['memlock']} (-1 is unlimited): {said}"


def test_cpu_set_holds(guest: GuestRun) -> None:
    job = _job(guest.scenario("cpu_set"))
    seen = _printed(job, "before")
    assert seen["cpu_count"] == GUEST_CPUS, seen
    assert len(seen["before"]) == 1, f"a 1-CPU job runs on {seen['before']}"
    assert seen["after"] == seen["before"], f"the job widened its affinity past its CPU set (no cgroup cpuset): {seen}"
    effective = seen["effective"]
    if effective:  # present where the job's group has the cpuset controller
        assert effective == str(seen["before"][0]), seen


def test_job_opens_only_its_own_gpu_device(guest: GuestRun) -> None:
    job = _job(guest.scenario("gpu_device"))
    assert job["state"] == "succeeded", _shown(job)
    assert len(job["gpu_indices"]) == 1, _shown(job)
    own = job["gpu_indices"][0]  # minor number = index in guest/two-gpu-vm.yaml
    opened = _printed(job, "open")["open"]
    assert opened[f"nvidia{own}"] == "ENXIO", f"its own GPU must be allowed (ENXIO: no driver): {opened}"
    assert opened[f"nvidia{1 - own}"] == "EPERM", f"the other GPU must be denied by the device policy: {opened}"
    assert opened["nvidiactl"] == "ENXIO", f"the control device must be allowed: {opened}"


def test_systemctl_restart_adopts_the_running_job(guest: GuestRun) -> None:
    facts = guest.scenario("restart")
    step = facts["systemctl_restart"]
    assert step["daemon_pid_after"] != step["daemon_pid_before"], step
    assert step["main_pid_after"] == step["daemon_pid_after"], step
    assert step["job_process_alive"] and step["job_state"] == "running", step


def test_kill_9_restart_by_systemd_adopts_the_job_and_records_its_exit_code(guest: GuestRun) -> None:
    facts = guest.scenario("restart")
    step = facts["kill_9"]
    assert int(step["n_restarts"]) >= 1, f"systemd did not restart the daemon (Restart=on-failure): {step}"
    assert step["main_pid_after"] == step["daemon_pid_after"] != step["daemon_pid_before"], step
    assert step["job_process_alive"] and step["job_state"] == "running", step
    job = _job(facts)
    assert (job["state"], job["exit_code"], job["attempt"]) == ("failed", 7, 1), _shown(job)
    assert "exit code 7" in job["reason"], _shown(job)


def test_doctor_and_health_name_the_cgroup_path_taken(guest: GuestRun) -> None:
    health = guest.result["health"]
    assert (health["cgroups"], health.get("cgroups_path")) == (2, "systemd"), health
    facts = guest.scenario("doctor")
    findings = [f for f in facts["report"]["findings"] if f["id"].startswith("jobs.cgroups")]
    assert findings, f"no jobs.cgroups finding: {facts['report']['findings']}"
    usable = [f for f in findings if f["id"] != "jobs.cgroups_unavailable"]
    assert usable, f"the doctor says jobs get no cgroups on systemd + cgroup v2: {findings}"
    assert any("systemd" in f["message"] for f in usable), f"the finding does not name the systemd path: {findings}"
