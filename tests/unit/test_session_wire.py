"""A session's frames and detach keys (model/session.py), and who the client lets attach (cli/session.py)."""

from __future__ import annotations

import pytest

from tuxai.cli.session import _own_session
from tuxai.errors import PermissionDenied, UsageError
from tuxai.model.job import JobSpec, JobState
from tuxai.model.session import MAX_FRAME, DetachScanner, FrameReader, Kind, frame, json_frame, read_json, window
from tuxai.model.wire import Job, PublicJob


def test_frames_come_out_whole_whatever_the_pieces() -> None:
    stream = frame(Kind.INPUT, b"ls -l\r") + json_frame(Kind.RESIZE, {"rows": 40, "cols": 120}) + frame(Kind.DETACH)
    reader = FrameReader()
    got = [f for i in range(len(stream)) for f in reader.feed(stream[i : i + 1])]  # one byte at a time
    assert got == [(Kind.INPUT, b"ls -l\r"), (Kind.RESIZE, b'{"rows": 40, "cols": 120}'), (Kind.DETACH, b"")]
    assert window(read_json(got[1][1])) == (40, 120) and not reader.broken


@pytest.mark.parametrize("head", [b"\x63\x00\x00\x00\x00", bytes([Kind.OUTPUT]) + (MAX_FRAME + 1).to_bytes(4, "big")])
def test_a_stream_that_is_not_a_session_breaks_the_reader(head: bytes) -> None:
    reader = FrameReader()
    assert reader.feed(head + frame(Kind.EOF)) == [] and reader.broken


@pytest.mark.parametrize("data", [{"rows": 0, "cols": 80}, {"rows": "40", "cols": 80}, {"rows": 70000, "cols": 1}, {}])
def test_a_window_size_no_terminal_has_is_none(data: dict[str, object]) -> None:
    assert window(data) is None
    assert read_json(b"not json") == {} and read_json(b"[1]") == {}


def test_detach_keys_are_found_across_reads_and_anything_else_passes() -> None:
    scanner = DetachScanner()
    assert scanner.feed(b"echo hi\r\x10") == (b"echo hi\r", False)  # the Ctrl-p is held
    assert scanner.feed(b"\x10") == (b"\x10", False)  # not a detach: the first one goes, the second is held
    assert scanner.feed(b"a") == (b"\x10a", False)
    assert scanner.feed(b"x\x10\x11ignored") == (b"x", True)
    assert DetachScanner().feed(b"\x11\x03") == (b"\x11\x03", False)


_PUBLIC = dict(
    id=12, name="bash", state=JobState.RUNNING, reason="", exit_code=None, signal=None, held=False, priority=0,
    flags=(), gpus=(), gpu_indices=(), cpus=(), node=None, submitted_at=0.0, started_at=1.0, ended_at=None,
    waited_s=1.0, ran_s=1.0,
)  # fmt: skip


def test_another_users_session_is_refused_in_one_line() -> None:
    with pytest.raises(PermissionDenied) as caught:
        _own_session(PublicJob(user="alice\x1b[2J", **_PUBLIC))  # type: ignore[arg-type]
    assert caught.value.message == "job 12 is alice\\x1b[2J's: only its owner and root can attach to it"


def test_a_batch_job_is_not_attached_to() -> None:
    job = Job(
        user="root", log_path="", command=("sleep", "9"), attempt=1, failures=0, requeues=0, wall_s=None, cpu_s=None,
        max_rss_bytes=None, oom_killed=False, endpoint=None, spec=JobSpec(command=("sleep", "9")), **_PUBLIC,
    )  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(UsageError, match="job 12 is a batch job, not an interactive session"):
        _own_session(job)
