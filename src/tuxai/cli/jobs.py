"""The job commands: ``submit``, ``ls``, ``show``, ``logs``, ``cancel``, ``hold``,
``release``, ``gpus``. Each parses, makes one SDK call (``tuxai.api.client``), renders."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tuxai.api.client import Client, default_home
from tuxai.cli.arrays import act, fold, job_label, one_job, only, resolve, show_array, submitted
from tuxai.cli.daemon_notes import builds_on_nodes, simulated_note_of
from tuxai.cli.queue import EVERY, Selection, print_explain, select, standing_rows
from tuxai.cli.states import state_word, state_words
from tuxai.errors import DaemonError, TuxaiError, UsageError
from tuxai.model.job import JobSpec, JobState
from tuxai.model.jobfile import load_job_file, spec_from_dict
from tuxai.model.resources import WHOLE_GPU_MILLI
from tuxai.model.units import format_bytes
from tuxai.model.wire import EnergyTotals, Job, JobDetail, PublicJob, to_json

ACTIVE = (JobState.PENDING, JobState.RUNNING, JobState.REQUEUED)
# C0 and C1 controls, DEL, bidi overrides and isolates, zero-width marks, line separators, surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def printable(value: object) -> str:
    """Users' text as a terminal may show it, control characters escaped: ``"a\\x1b]0;x"`` shows ``a\\x1b]0;x``.

    A job's name, command or reason comes from its user and is printed on root's terminal.
    """
    return _UNPRINTABLE.sub(_escaped, str(value))


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def cell(value: object) -> Text:
    """``printable`` text for a Rich table: a ``Text``, never read as markup (a job named ``[/bold]``)."""
    return Text(printable(value))


def home_dir(home: Path | None) -> Path:
    """``--home``, else ``$TUXAI_HOME``, else the user's own home (``tuxai.settings.resolve_home``)."""
    return (home or default_home()).expanduser().resolve()


def client(home: Path | None) -> Client:
    """The SDK client of the daemon of ``home``; without one, the user's own or the system's (``Client.discover``)."""
    from tuxai.cli.common import daemon_client

    return daemon_client(home_dir(home) if home is not None else None)


def _print_json(data: object) -> None:
    """A wire value as the JSON of docs/jobs.md (``to_json``), keys sorted."""
    print(json.dumps(to_json(data), indent=2, sort_keys=True))


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


# ---- submit ---------------------------------------------------------------------------------


def build_spec(file: Path | None, flags: dict[str, Any], command: list[str]) -> JobSpec:
    """The job file's fields, overridden by the flags given, with the command after ``--``, read by
    the one validator (``spec_from_dict``, which the daemon applies again to what it receives).

    Raises:
        UsageError: unreadable file, no command, or a bad field (said here, before the daemon).
    """
    data: dict[str, Any] = {}
    if file is not None:
        if not file.is_file():
            raise UsageError(f"job file {file} does not exist", hint="check the path")
        data = load_job_file(file.read_text(), str(file))
    data.update({k: v for k, v in flags.items() if v is not None and v != [] and v != ()})
    if command:
        data["command"] = command
    if not data.get("command"):
        spec_from_dict({**data, "command": ["-"]}, origin=str(file) if file else "submit", slurm_time=True)
        raise UsageError("no command to run", hint="tuxai submit [OPTIONS] -- COMMAND [ARGS...], or --file job.yaml")
    data.setdefault("workdir", os.getcwd())
    return spec_from_dict(data, origin=str(file) if file else "submit", slurm_time=True)  # --time 90: minutes


_SERVE_SCRIPT = 'exec "$1" -m tuxai serve "$2" --port 0 --endpoint-file "$TUXAI_ENDPOINT_FILE"'
"""The server started by ``sh`` for ``$TUXAI_ENDPOINT_FILE``: Python and the model are its arguments, never its text."""


def serve_command(target: Path, flags: dict[str, object] | None = None) -> list[str]:
    """The job command of ``submit --serve``: the model server on a free loopback port, its URL
    written to ``$TUXAI_ENDPOINT_FILE`` (``tuxai show`` reads it as the endpoint).

    The path goes in as an argument of ``sh -c``, so ``$(...)`` in it is a name, never run (security issue S9).
    With ``flags["image"]`` the server is the image's own ``python3`` (its ``tuxai``), and the model is
    set as ``flags["serve_model"]``: mounted read-only at its own path (docs/containers.md).
    """
    if flags is not None and flags.get("image"):
        return image_serve_command(target, flags)
    if str(target).startswith("models:/"):  # the registry's alias, followed by the job (lifecycle.deploy)
        from tuxai.lifecycle.deploy import parse_model_uri

        served = str(parse_model_uri(str(target)))  # a bad one: the submitter's one-line error
    else:
        target = target.expanduser().resolve()
        if not target.exists():
            raise UsageError(
                f"--serve {target}: no such model or repository", hint="pass a .onnx/.pt file or a repo dir"
            )
        served = str(target)
    return ["sh", "-c", _SERVE_SCRIPT, "tuxai-serve", sys.executable, served]


def image_serve_command(target: Path, flags: dict[str, object]) -> list[str]:
    """``serve_command`` for a server in ``flags["image"]``: ``python3 -m tuxai serve`` inside, the
    model a path the container gets read-only (set in ``flags["serve_model"]``).

    Raises:
        UsageError: a registry alias (``models:/``: fetched on the host, not yet in an image), or no such model.
    """
    if str(target).startswith("models:/"):
        raise UsageError(
            "--serve models:/NAME@ALIAS with --image: a registry alias is served on the host only",
            hint="serve the version's files: tuxai submit --serve /path/to/model.onnx --image IMAGE",
        )
    served = target.expanduser().resolve()
    if not served.exists():
        raise UsageError(f"--serve {served}: no such model or repository", hint="pass a .onnx/.pt file or a repo dir")
    flags["serve_model"] = str(served)
    return ["sh", "-c", _SERVE_SCRIPT, "tuxai-serve", "python3", str(served)]  # the image's python3, on its PATH


def run_submit(home: Path | None, spec: JobSpec, env_cache: Callable[[str], str] | None, as_json: bool) -> int:
    """Build the job's environment if asked (progress on stderr), submit, print the id."""
    if spec.env_path and env_cache is not None:
        from tuxai.envs.node import lock_text  # a Ray daemon's nodes build the env from this text

        with client(home) as api:
            lock = lock_text(spec.env_path) if builds_on_nodes(api) else ""  # read first: a refusal costs no build
        spec = dataclasses.replace(spec, env_path=env_cache(spec.env_path), env_lock=lock)
    from tuxai.lifecycle.job_tracking import submit_tracked  # an MLflow run with tuxai[mlflow] (docs/lifecycle.md)

    with client(home) as api:
        job_id = submit_tracked(api, spec, lambda line: print(line, file=sys.stderr))
        note = simulated_note_of(api)  # every reply of a daemon on fake GPUs says so (stderr: scripts read stdout)
    if note:
        print(f"note: {note}", file=sys.stderr)
    if as_json:
        print(json.dumps({"id": job_id}))
    else:
        print(submitted(job_id, spec.array))  # an array: its id and its tasks (cli/arrays.py)
    return 0


# ---- ls / show / logs -----------------------------------------------------------------------


def run_ls(
    home: Path | None,
    everything: bool,
    states: list[str],
    as_json: bool,
    selection: Selection = EVERY,
    arrays: tuple[bool, str | None] = (False, None),
) -> int:
    """The queue: active jobs (``--all``: every job) as ``selection`` picks them, as a table or JSON.

    ``arrays``: (one line per task, not per array; only this job or array, every state: ``ls 12``)."""
    expand, wanted = arrays
    with client(home) as api:
        jobs = select(api.jobs(states or (None if everything or wanted else list(ACTIVE))), selection)
        jobs = only(jobs, wanted) if wanted else jobs
        lines = fold(jobs, expand or as_json or wanted is not None, api)  # an array: one line (cli/arrays.py)
        from tuxai.cli.gpu_table import placement_words  # it imports this module's cell()

        placed = api.gpus() if not as_json and any(j.gpu_indices for j in jobs) else []  # MIG profiles, slice shares
        note = None if as_json else simulated_note_of(api)  # the header says a daemon's GPUs are fake
    if as_json:
        _print_json(jobs)
        return 0
    if note:
        print(note)
    if selection.explain:
        return print_explain(jobs, time.time())
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "NAME", "USER", "STATE", "GPUS", "CPUS", "WAITED", "RAN", "REASON"):
        table.add_column(column, no_wrap=column != "REASON")
    for job in lines:
        gpus = " ".join(job.ranks) or placement_words(job, placed)  # a Slurm job: each node and its GPUs
        table.add_row(
            cell(job_label(job)),
            cell(printable(job.name)[:24]),
            cell(job.user),
            cell(
                state_word(job.state, job.reason)  # cancelling, not running, once asked to stop
                + (f" ({job.exit_code})" if job.exit_code not in (None, 0) else "")
                + (f" [{','.join(job.flags)}]" if job.flags else "")
            ),
            cell(gpus),
            cell(len(job.cpus) if job.cpus else "-"),
            cell(_ago(job.waited_s)),
            cell(_ago(job.ran_s)),
            cell(job.reason),
        )
    Console(width=200 if not sys.stdout.isatty() else None).print(table)
    if not jobs:
        print("no jobs" + ("" if everything else " waiting or running (--all shows finished ones)"))
    return 0


def run_show(home: Path | None, job_id: int | str, as_json: bool) -> int:
    """One job in full, with its history (another user's: its public fields); an array: its tasks."""
    with client(home) as api:
        job_id, whole = resolve(api, str(job_id))  # 12_3: a task; 12: a job, or a whole array
        if whole:
            return show_array(api, job_id, as_json)
        job = api.job(job_id)
    if as_json:
        _print_json(job)
        return 0
    mine = isinstance(job, Job)  # the daemon sends the rest to the job's owner and root only
    rows = [
        ("job", f"{job_label(job)} {job.name}" + (f" (job {job.id})" if job.array_job is not None else "")),
        ("user", job.user),
        ("state", state_words(job.state, job.reason)),
        *standing_rows(job, time.time()),  # the scheduler's priority terms, rank and reserved start
        *([("command", " ".join(job.command)), ("asked", _asked(job.spec))] if isinstance(job, Job) else []),
        ("gpus", ", ".join(f"{i} {u}" for i, u in zip(job.gpu_indices, job.gpus, strict=True)) or "-"),
        *([("nodes", " ".join(job.ranks))] if job.ranks else []),  # Slurm's: n1:0,1 n2:0,1 (rank order)
        ("cpus", ",".join(str(c) for c in job.cpus) or "-"),
        ("exit", _exit(job)),
        *_rank_rows(job),  # a gang's: each rank's end
        ("waited", _ago(job.waited_s)),
        ("ran", _ago(job.ran_s)),
        *(
            _usage_rows(job)
            if isinstance(job, Job)
            else [("private", "another user's job: its command, log and history are theirs")]
        ),
        ("flags", ", ".join(job.flags) or "-"),
        *([("endpoint", job.endpoint)] if isinstance(job, Job) and job.endpoint else []),
    ]
    if isinstance(job, JobDetail) and job.energy is not None:
        rows += _energy_rows(job.energy)
    for key, value in rows:
        print(f"{key:>12}  {printable(value)}")
    if mine:
        print(f"{'history':>12}")
    for event in job.events if isinstance(job, JobDetail) else ():
        stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
        print(f"{'':>12}  {stamp}  {event.to_state.value:<10} {printable(event.reason)}")
    return 0


def _rank_rows(job: PublicJob) -> list[tuple[str, str]]:
    """A gang's ranks' ends, one row each (its owner's to see)."""
    ends = job.rank_exits if isinstance(job, Job) and len(job.rank_exits) > 1 else ()
    return [(f"rank {number}", end) for number, end in enumerate(ends)]


def _usage_rows(job: Job) -> list[tuple[str, str]]:
    return [
        ("cpu time", _ago(job.cpu_s)),
        ("peak memory", format_bytes(job.max_rss_bytes) if job.max_rss_bytes else "-"),
        ("attempts", f"{job.attempt} (failures {job.failures}, requeues {job.requeues})"),
        ("log", job.log_path or "-"),
    ]


def _energy_rows(energy: EnergyTotals) -> list[tuple[str, str]]:
    methods = ", ".join(f"{device}: {how}" for device, how in energy.methods.items())
    wh = {"total": energy.total_kwh * 1000, "gpu": energy.gpu_kwh * 1000, "cpu": energy.cpu_kwh * 1000}
    grid = f"{energy.grid_g_per_kwh:g} g/kWh, PUE {energy.pue:g}"
    return [
        ("GPU-hours", f"{energy.gpu_hours:.4f}"),
        ("energy", f"{wh['total']:.3f} Wh (GPU {wh['gpu']:.3f}, CPU {wh['cpu']:.3f})"),
        ("CO2e", f"{energy.co2e_kg * 1000:.3f} g at {grid}"),
        ("measured by", methods or "-"),
        *_gpu_use_rows(energy),
    ]


def _gpu_use_rows(energy: EnergyTotals) -> list[tuple[str, str]]:
    """The job's mean GPU utilization and peak GPU memory while it ran (issue 18), when sampled."""
    if energy.gpu_util_mean_pct is None and energy.gpu_memory_peak_bytes is None:
        return []
    util = "-" if energy.gpu_util_mean_pct is None else f"{energy.gpu_util_mean_pct:.0f} % mean"
    peak = "-" if energy.gpu_memory_peak_bytes is None else format_bytes(int(energy.gpu_memory_peak_bytes))
    return [("GPU use", f"{util}, peak memory {peak}")]


def _asked(spec: JobSpec) -> str:
    request = spec.request
    parts = [f"{request.gpus} GPU", f"{request.cpus} CPU"]
    if request.gpu_milli != WHOLE_GPU_MILLI:
        parts[0] = f"{request.gpu_milli / WHOLE_GPU_MILLI:g} of a GPU"
    if request.mig_profile:
        parts[0] = f"{request.gpus} × MIG {request.mig_profile}"
    if request.memory_bytes:
        parts.append(format_bytes(request.memory_bytes))
    if spec.launcher is not None:  # a gang: what is asked is per node
        nodes = f"{spec.nodes} node{'' if spec.nodes == 1 else 's'}"
        parts = [f"{nodes} × ({', '.join(parts)})", f"launcher {spec.launcher}"]
    if spec.time_limit_s:
        parts.append(f"time limit {_ago(spec.time_limit_s)}")
    if spec.retries:
        parts.append(f"{spec.retries} retries")
    if spec.session:  # tuxai run: its owner attaches with tuxai attach
        parts.append(f"interactive session ({spec.session})")
    return ", ".join(parts)


def _exit(job: PublicJob) -> str:
    if job.signal:
        return f"signal {job.signal}" + (" (out of memory)" if isinstance(job, Job) and job.oom_killed else "")
    return "-" if job.exit_code is None else str(job.exit_code)


def run_logs(
    home: Path | None, job_id: int | str, follow: bool, tail: int | None = None, rank: int | None = None
) -> int:
    """Print the job's output (``--tail N``: its last lines; ``--rank R``: a multi-node job's node R, else
    every node's lines prefixed: ``cli.rank_logs``); ``-f`` keeps printing until the job ends."""
    from tuxai.cli.logs import print_log
    from tuxai.cli.rank_logs import print_ranks

    with client(home) as api:
        number = one_job(api, str(job_id), "logs")  # 12_3: task 3 of array 12
        job = api.job(number)
        nodes = job.spec.nodes if isinstance(job, Job) else 1
        if rank is None and nodes > 1:
            return print_ranks(api, number, nodes, follow, tail)
        return print_log(api, number, follow, tail, rank=rank or 0)


# ---- cancel / hold / release / gpus ---------------------------------------------------------


def run_each(home: Path | None, verb: str, job_ids: list[str]) -> int:
    """``cancel``, ``hold`` or ``release`` every id (``12``: a job or a whole array, ``12_3``: one task);
    one line per failure, exit 2 if any failed."""
    failed = 0
    with client(home) as api:
        for job_id in job_ids:
            try:
                line = act(api, verb, job_id)
            except DaemonError:
                raise
            except TuxaiError as exc:
                failed += 1
                print(f"error: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
                continue
            print(printable(line))
    return 2 if failed else 0


def run_gpus(home: Path | None, as_json: bool) -> int:
    """Who holds which GPU."""
    with client(home) as api:
        gpus = api.gpus()
    if as_json:
        _print_json(gpus)
        return 0
    from tuxai.cli.gpu_table import gpus_table  # it imports this module's cell()

    Console(width=200 if not sys.stdout.isatty() else None).print(gpus_table(gpus))
    if not gpus:
        print("this machine has no GPU the daemon knows of")
    return 0
