"""``tuxai logs --tail N`` reads a log back from its end (review 11b): a large log costs what its last
lines do, and a job still writing cannot keep the tail from ending; ``-f`` goes on from there."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonProcess, shell
from tuxai.api.client import Client
from tuxai.cli.logs import print_log
from tuxai.cli.rank_logs import print_ranks
from tuxai.model.job import JobState

BIG = 32 * 2**20


class Counting(Client):
    """The real client, counting the log bytes it was sent; ``sized`` set once a log's size was asked."""

    read = 0
    sized = threading.Event()

    def log(self, job_id: int, offset: int = 0, rank: int = 0, limit: int | None = None) -> tuple[bytes, int, JobState]:
        data, following, state = super().log(job_id, offset, rank, limit)
        Counting.read += len(data)
        return data, following, state

    def log_size(self, job_id: int, rank: int = 0) -> int:
        size = super().log_size(job_id, rank)
        Counting.sized.set()
        return size


def test_F11b_tail_of_a_large_log_reads_its_end_only_then_follows(
    daemon: DaemonProcess, tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    gate = tmp_path / "gate"
    script = f'yes 0123456789abcdef | head -c {BIG}; printf "\\ntail-a\\ntail-b\\nhalf"; '
    script += f"while [ ! -e {gate} ]; do sleep 0.02; done; echo ' done'; echo after"
    job_id = daemon.client.submit(shell(script))
    log = daemon.home / "jobs" / str(job_id) / "output.log"
    while not log.exists() or log.stat().st_size < BIG + 19:
        assert daemon.client.job(job_id).state is not JobState.FAILED
    api = Counting.for_home(daemon.home)
    try:
        print_ranks(api, job_id, 1, follow=False, tail=2)
        assert capfdbinary.readouterr().out == b"[rank 0] tail-b\n[rank 0] half\n"
        print_log(api, job_id, follow=False, tail=3)
        assert capfdbinary.readouterr().out == b"tail-a\ntail-b\nhalf"
        assert Counting.read < 2**20, f"read {Counting.read} bytes of a {BIG}-byte log for its last lines"
        tails_read = Counting.read
        Counting.sized.clear()
        opener = threading.Thread(target=lambda: Counting.sized.wait(30) and gate.touch())
        opener.start()
        print_ranks(api, job_id, 1, follow=True, tail=1)  # the job writes on only once the tail began
        opener.join()
        assert capfdbinary.readouterr().out == b"[rank 0] tail-b\n[rank 0] half done\n[rank 0] after\n"
        with capfdbinary.disabled():
            print(f"two tails of a {BIG}-byte log read {tails_read} bytes")
    finally:
        gate.touch()
        api.close()
