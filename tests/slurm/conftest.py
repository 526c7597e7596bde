"""One real two-node Slurm per test run (tests/slurm/cluster.py), brought up once and torn down at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.daemon_helpers import REPO, DaemonProcess, finish
from tests.slurm.cluster import Cluster, start


@pytest.fixture(scope="session")
def slurm() -> Iterator[Cluster]:
    """munge, slurmctld, slurmd n1 and n2 (2 fake GPUs each); ``SLURM_CONF`` set for this process and its children."""
    if os.getuid() != 0 or not shutil.which("slurmctld"):
        pytest.fail("the Slurm tier runs as root with slurm-wlm and munge installed (make test-slurm installs them)")
    began = time.monotonic()
    cluster = start()
    print(f"\nSlurm up in {time.monotonic() - began:.1f} s ({cluster.root})")
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = cluster.env["SLURM_CONF"]
    try:
        yield cluster
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        cluster.stop()
    table = subprocess.run(["ps", "-eo", "stat=,pid=,args="], capture_output=True, text=True, check=True).stdout
    left = [line for line in table.splitlines() if "slurmstepd" in line and not line.lstrip().startswith("Z")]
    assert not left, f"job steps left running after the cluster stopped: {left}"  # zombies: being reaped


@pytest.fixture(scope="session")
def daemon(slurm: Cluster) -> Iterator[DaemonProcess]:
    """The daemon of ``tuxai up --slurm``, one for the tier (its Slurm commands find the cluster through SLURM_CONF)."""
    # Where nobody can reach its job's files (pytest's temporary directories are root's alone), and
    # a Python nobody may run for the node runner (this one lives under /root).
    home = slurm.root / "home"
    python = slurm.root / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={REPO / "src"} exec /usr/bin/python3 "$@"\n')
    python.chmod(0o755)
    extra = ("--slurm", "--slurm-python", str(python), "--cgroups", "off", "--tick-period", "1s")
    process = DaemonProcess(home, extra=extra).start()
    try:
        yield process
    finally:
        finish(process)
