"""``tuxai top``'s layout at any terminal size: columns drop whole, the GPU index, the percentages and
the holder never vanish, MIG instances and GPUs busy outside tuxai show as such (issue 13)."""

from __future__ import annotations

from rich.text import Text

from tuxai.cli.gpu_table import gpu_state, instance_holder, placement_words
from tuxai.cli.top import split_keys
from tuxai.cli.top_layout import GPU_COLUMNS, QUEUE_COLUMNS, TopState, fit, frame, gpu_rows, user_rows
from tuxai.model.job import JobState
from tuxai.model.wire import PublicJob
from tuxai.model.wire_gpus import GpuHolder, GpuView, LiveGpu, LiveView, MigInstance, OutsideProcess

GIB = 1024**3
MIGS = tuple(MigInstance(i, "1g.10gb", f"MIG-{i}", 10 * GIB) for i in range(7))


def gpu_view(index: int, holders: tuple[GpuHolder, ...] = (), **fields: object) -> GpuView:
    """One A100 of a simulated DGX."""
    mig = fields.pop("mig_instances", ())
    return GpuView(index, f"GPU-{index}", "NVIDIA A100-SXM4-80GB", 80 * GIB, (), holders, mig, **fields)  # type: ignore[arg-type]


def live_gpu(index: int, util: float) -> LiveGpu:
    """A sample: ``util`` percent busy, as much memory used as half of it."""
    memory = int(80 * GIB * util / 200)
    return LiveGpu(
        index, None, 0.0, util, memory, 80 * GIB, 60 + 3.4 * util, 400.0, None, 35.0, None, None, 0, None, (), "", ()
    )


def job(
    job_id: int, user: str, name: str, state: JobState, gpus: tuple[str, ...], indices: tuple[int, ...]
) -> PublicJob:
    """A job of the queue as another user sees it."""
    fields = {"exit_code": None, "signal": None, "held": False, "priority": 0, "flags": (), "cpus": (), "node": None}
    times = {"submitted_at": 0.0, "started_at": None, "ended_at": None, "waited_s": 5.0, "ran_s": 3600.0}
    return PublicJob(
        id=job_id, name=name, user=user, state=state, reason="", gpus=gpus, gpu_indices=indices, **fields, **times
    )  # type: ignore[arg-type]


MIG_JOB = job(12, "alice", "mig-train", JobState.RUNNING, ("MIG-0", "MIG-1", "MIG-2"), (0, 0, 0))
SLICE_JOB = job(13, "bob", "notebook", JobState.RUNNING, ("GPU-2",), (2,))
WHOLE_JOB = job(14, "carol", "train-llm", JobState.RUNNING, ("GPU-4", "GPU-5"), (4, 5))
WAITING = job(15, "dave", "sweep", JobState.PENDING, (), ())
GPUS = [
    gpu_view(0, tuple(GpuHolder(12, "alice", "mig-train", 0.0, f"MIG-{i}") for i in range(3)), mig_instances=MIGS),
    gpu_view(1),
    gpu_view(2, (GpuHolder(13, "bob", "notebook", 0.25, None),)),
    gpu_view(3, outside=(OutsideProcess(4242, "erin", 2 * GIB),)),
    gpu_view(4, (GpuHolder(14, "carol", "train-llm", 1.0, None),)),
    gpu_view(5, (GpuHolder(14, "carol", "train-llm", 1.0, None),)),
    gpu_view(6),
    gpu_view(7),
]
LIVE = LiveView(
    "simulated", "estimate", "", tuple(live_gpu(i, [97, 0, 40, 12, 100, 100, 0, 0][i]) for i in range(8)), {}, {}
)
JOBS = [MIG_JOB, SLICE_JOB, WHOLE_JOB, WAITING]
HOLDERS = {
    0: "12 alice mig-train",
    1: "free",
    2: "13 bob notebook",
    3: "pid 4242 of erin",
    4: "14 carol",
    5: "14 carol",
}


def screen(width: int, height: int, state: TopState | None = None) -> list[str]:
    """The frame as the terminal shows it, line by line."""
    lines = frame(LIVE, GPUS, JOBS, state or TopState(), (width, height), "12:00:00")
    assert all(isinstance(line, Text) for line in lines)
    return [line.plain for line in lines]


def gpu_row(lines: list[str], index: int) -> str:
    """The row of GPU ``index``."""
    return next(line for line in lines if line.split()[:1] == [str(index)])


def test_at_80x24_every_gpu_keeps_its_index_percentages_and_holder() -> None:
    lines = screen(80, 24)
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), lines
    assert "MODEL" not in lines[1] and "UTIL" in lines[1] and "MEM" in lines[1] and "HELD BY" in lines[1]
    for index, util in enumerate([97, 0, 40, 12, 100, 100, 0, 0]):
        row = gpu_row(lines, index)
        assert row.split()[1] == f"{util}%", row  # utilization right after the index
        assert row.split()[2].endswith("%"), row  # then memory
        assert HOLDERS.get(index, "free") in row, row
    assert "MIG 4/7 free" in gpu_row(lines, 0)  # a MIG-split GPU is not "free"
    assert "busy outside tuxai" in gpu_row(lines, 3)
    assert not any(line.startswith("0/") for line in lines)  # no room for one row per MIG instance
    queue = next(line for line in lines if line.split()[:2] == ["12", "alice"])
    assert "GPU 0 · 3×MIG 1g.10gb" in queue
    assert "GPU 2 · 25% slice" in next(line for line in lines if line.split()[:2] == ["13", "bob"])


def test_at_200x50_more_columns_and_a_row_per_mig_instance() -> None:
    lines = screen(200, 50)
    assert len(lines) <= 50 and all(len(line) <= 200 for line in lines)
    for header in ("MODEL", "MEMORY", "TEMP", "POWER", "HELD BY"):
        assert header in lines[1]
    assert "A100-SXM4-80GB" in gpu_row(lines, 1) and "█" in gpu_row(lines, 0)
    instances = [line for line in lines if line.split()[:1] and line.split()[0].startswith("0/")]
    assert len(instances) == 7
    assert "12 alice mig-train" in instances[0] and instances[6].rstrip().endswith("free")
    assert "pid 4242 of erin (2.0 GiB)" not in gpu_row(lines, 3)  # compact: the memory is in its column
    assert "pid 4242 of erin" in gpu_row(lines, 3)
    assert "CPU" in next(line for line in lines if line.startswith("ID"))


def test_columns_drop_least_needed_first_and_never_the_essentials() -> None:
    for width in range(20, 220, 7):
        kept = {c.header for c in fit(GPU_COLUMNS, width, 28)}
        assert {"GPU", "UTIL", "MEM"} <= kept
        queue = {c.header for c in fit(QUEUE_COLUMNS, width, 16)}
        assert {"ID", "USER", "STATE"} <= queue
    assert "TEMP" in {c.header for c in fit(GPU_COLUMNS, 80, 28)}
    assert "MODEL" not in {c.header for c in fit(GPU_COLUMNS, 80, 28)}
    narrow = screen(40, 12)
    assert len(narrow) <= 12 and all(len(line) <= 40 for line in narrow)
    assert gpu_row(narrow, 4).split()[1] == "100%"


def test_a_machine_without_gpus_shows_its_queue() -> None:
    lines = [
        line.plain for line in frame(LiveView("none", "none", "", (), {}, {}), [], [WAITING], TopState(), (80, 24), "")
    ]
    assert lines[1] == "no GPU" and any(line.split()[:2] == ["15", "dave"] for line in lines)


def test_sort_keys_order_the_gpus() -> None:
    assert [r.label for r in gpu_rows(LIVE, GPUS, "util", False)][:3] == ["4", "5", "0"]
    by_user = [r.label for r in gpu_rows(LIVE, GPUS, "user", False)]
    assert by_user[:4] == ["0", "2", "4", "5"] and set(by_user[-3:]) == {"1", "6", "7"}
    assert [r.label for r in gpu_rows(LIVE, GPUS, "memory", False)][:2] == ["4", "5"]


def test_the_users_panel_and_the_selected_job() -> None:
    users = {r.user: r for r in user_rows(JOBS, GPUS)}
    assert (users["carol"].gpus, users["carol"].running, users["carol"].gpu_hours) == (2.0, 1, 2.0)
    assert (users["alice"].mig, users["bob"].gpus, users["dave"].pending) == (3, 0.25, 1)
    panel = screen(80, 24, TopState(users=True))
    assert any(line.split()[:2] == ["carol", "2"] for line in panel), panel
    state = TopState(selected=14, message="job 14 not cancelled: job 14 is carol's")
    lines = frame(LIVE, GPUS, JOBS, state, (80, 24), "12:00:00")
    selected = next(line for line in lines if line.plain.split()[:2] == ["14", "carol"])
    assert "reverse" in str(selected.spans) and lines[-1].plain.startswith("job 14 not cancelled")
    assert state.order == [12, 13, 14, 15]


def test_keys_typed_together_are_read_one_by_one() -> None:
    assert split_keys("u\x1b[Bc") == ["u", "\x1b[B", "c"]
    assert split_keys("\x1bOAq") == ["\x1bOA", "q"]
    assert split_keys("\x1b") == ["\x1b"]


def test_a_slice_of_memory_only_reads_as_its_size() -> None:
    memory_only = gpu_view(6, (GpuHolder(16, "fay", "embed", 1.0, None, 10 * GIB),))
    assert gpu_state(memory_only) == "fay job 16 embed (10.0 GiB slice)"
    assert gpu_state(GPUS[2]) == "bob job 13 notebook (25% slice), 75% free"  # no cap known: share only
    seen = job(16, "fay", "embed", JobState.RUNNING, ("GPU-6",), (6,))
    assert placement_words(seen, [memory_only]) == "GPU 6 · 10.0 GiB slice"


def test_a_mig_gpu_busy_outside_has_no_instance_free() -> None:
    busy = gpu_view(0, (), mig_instances=MIGS, outside=(OutsideProcess(77, "erin", None),))
    assert gpu_state(busy) == "MIG 7 × 1g.10gb, 0 free, busy outside tuxai: pid 77 of erin"


def test_a_process_on_one_mig_instance_shows_on_that_instance() -> None:
    busy = gpu_view(0, (), mig_instances=MIGS, outside=(OutsideProcess(9, "bob", GIB, 2),))
    assert gpu_state(busy) == "MIG 7 × 1g.10gb, 6 free"
    assert instance_holder(busy, MIGS[2]) == "busy outside tuxai: pid 9 of bob (1.0 GiB)"
    assert instance_holder(busy, MIGS[3]) == "free"


def test_placement_in_words() -> None:
    assert placement_words(MIG_JOB, GPUS) == "GPU 0 · 3×MIG 1g.10gb"
    assert placement_words(SLICE_JOB, GPUS) == "GPU 2 · 25% slice"
    assert placement_words(WHOLE_JOB, GPUS) == "4,5"
    assert placement_words(WAITING, GPUS) == "-"
    assert placement_words(MIG_JOB, []) == "GPU 0 · 3×MIG ?"  # the GPUs unknown: still not 0,0,0
