"""Who asks (``Caller``) and what one daemon manages (``DaemonConfig``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tuxai.hardware.cgroups import CgroupSupport
from tuxai.model.inventory import Inventory
from tuxai.scheduler.config import SchedulerConfig
from tuxai.scheduler.quotas import Quotas
from tuxai.settings import DAEMON_DEFAULTS


@dataclass(frozen=True)
class Caller:
    """Who asks: from ``SO_PEERCRED`` on the socket, or the owner for a token on TCP."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    admin: bool = False  # root, or the user the daemon runs as


@dataclass(frozen=True)
class DaemonConfig:
    """What one daemon manages: its home, the machine, the policy (the settings' defaults: ``tuxai.settings``)."""

    home: Path
    inventory: Inventory
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    quotas: Quotas = field(default_factory=Quotas)  # the config file's limits: (daemon.limits)
    cgroups: CgroupSupport = field(default_factory=lambda: CgroupSupport(0, problem="not probed"))
    online_cpus: tuple[int, ...] = ()
    cgroup_every_job: bool = DAEMON_DEFAULTS.cgroups == "all"  # memory and cpu groups for every job, not only --mem
    job_pids_max: int = DAEMON_DEFAULTS.job_pids_max  # tasks (processes + threads) one job may have; 0: no cap
    keep_finished_s: float = DAEMON_DEFAULTS.keep_finished_s  # ended jobs (and their files) kept this long; 0: forever
    allow_foreign_gpu_use: bool = DAEMON_DEFAULTS.allow_foreign_gpu_use  # hand out GPUs busy outside tuxai
    node: str = "local"
    notify_socket: str = ""
