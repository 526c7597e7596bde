"""GPUs a job cannot have for a reason of the machine: in MIG mode, or busy outside tuxai (issue 13)."""

from __future__ import annotations

from tests.scheduler_helpers import DGX, job, run, started
from tuxai.model.resources import Allocation, GpuShare
from tuxai.scheduler import Reserve, Running, Snapshot, decide
from tuxai.scheduler.admission import rejection
from tuxai.scheduler.unavailable import index_ranges, pending_outside_note

BUSY = {"dgx": {3: "pid 4242 of alice"}}


def test_a_gpu_busy_outside_tuxai_is_never_handed_out() -> None:
    free = started(run((DGX,), (job("a", 7),)))
    assert 3 in {g.index for g in free["a"].allocation.gpus}  # GPU 0 is MIG: 1-7 are the whole ones
    decisions = list(decide(Snapshot((DGX,), 100.0, (job("a", 7), job("b", 6)), busy_outside=BUSY)))
    assert "a" not in started(decisions)
    assert 3 not in {g.index for g in started(decisions)["b"].allocation.gpus}


def test_a_slice_or_a_mig_instance_never_lands_on_a_gpu_busy_outside() -> None:
    busy = {"dgx": {0: "pid 1 of bob", **{i: "pid 2 of bob" for i in range(2, 8)}}}
    pending = (job("s", 1, gpu_milli=250), job("m", 1, mig_profile="1g.10gb"))
    decisions = started(list(decide(Snapshot((DGX,), 100.0, pending, busy_outside=busy))))
    assert [g.index for g in decisions["s"].allocation.gpus] == [1]
    assert "m" not in decisions


def test_the_pending_reason_names_the_gpu_busy_outside_and_who() -> None:
    hold = Running(job("r", 6), Allocation("dgx", tuple(GpuShare(i, None, 1000) for i in (1, 2, 4, 5, 6, 7))), 0.0)
    decisions = list(decide(Snapshot((DGX,), 100.0, (job("a", 2),), (hold,), busy_outside=BUSY)))
    (reserve,) = [d for d in decisions if isinstance(d, Reserve)]
    assert "GPU 3 is busy outside tuxai (pid 4242 of alice)" in str(reserve.explanation["reason"])


def test_a_gpu_busy_outside_stays_busy_when_the_job_on_it_ends() -> None:
    hold = Running(
        job("r", 7, time_limit_s=60.0), Allocation("dgx", tuple(GpuShare(i, None, 1000) for i in range(1, 8))), 0.0
    )
    decisions = list(decide(Snapshot((DGX,), 100.0, (job("a", 7),), (hold,), busy_outside=BUSY)))
    assert not [d for d in decisions if isinstance(d, Reserve)]  # GPU 3 never comes back: no start to promise
    note = pending_outside_note(BUSY["dgx"], DGX.inventory.gpus, job("a", 7).request)
    assert note.startswith("GPU 3 is busy outside tuxai (pid 4242 of alice)")
    assert pending_outside_note(BUSY["dgx"], DGX.inventory.gpus, job("c", 0).request) == ""  # CPU only
    two = pending_outside_note({3: "pid 1", 5: "pid 2"}, DGX.inventory.gpus, job("a", 7).request)
    assert two == "GPUs busy outside tuxai: 3 (pid 1), 5 (pid 2)"


def test_a_whole_gpu_request_says_gpus_are_in_mig_mode_and_which_mig_to_ask() -> None:
    reason = rejection(job("a", 8), (DGX,))
    assert reason is not None
    assert "GPU 0 is in MIG mode (7 × 1g.10gb) — ask for --mig 1g.10gb" in reason
    hold = Running(job("r", 7), Allocation("dgx", tuple(GpuShare(i, None, 1000) for i in range(1, 8))), 0.0)
    decisions = list(decide(Snapshot((DGX,), 100.0, (job("a", 1),), (hold,))))
    (reserve,) = [d for d in decisions if isinstance(d, Reserve)]
    assert str(reserve.explanation["reason"]).startswith("waiting for 1 free GPU on one node")
    assert "GPU 0 is in MIG mode (7 × 1g.10gb) — ask for --mig 1g.10gb" in str(reserve.explanation["reason"])


def test_index_ranges() -> None:
    assert index_ranges([3, 0, 1, 2, 6]) == "0-3, 6"
    assert index_ranges([5]) == "5"
    assert index_ranges([]) == ""


def test_a_process_on_one_mig_instance_keeps_only_that_instance_busy() -> None:
    busy = {"dgx": {(0, 2): "pid 9 of bob"}}
    decisions = list(decide(Snapshot((DGX,), 100.0, (job("m", 6, mig_profile="1g.10gb"),), busy_outside=busy)))
    assert sorted(g.mig_index for g in started(decisions)["m"].allocation.gpus) == [0, 1, 3, 4, 5, 6]
    whole = started(list(decide(Snapshot((DGX,), 100.0, (job("w", 7),), busy_outside=busy))))
    assert sorted(g.index for g in whole["w"].allocation.gpus) == [1, 2, 3, 4, 5, 6, 7]  # other GPUs untouched
    shares = tuple(GpuShare(0, None, 0, None, f"MIG-{i}", i) for i in range(7))
    hold = Running(job("r", 7, mig_profile="1g.10gb", time_limit_s=60.0), Allocation("dgx", shares), 0.0)
    pending = (job("m", 7, mig_profile="1g.10gb"),)
    decisions = list(decide(Snapshot((DGX,), 100.0, pending, (hold,), busy_outside=busy)))
    assert not [d for d in decisions if isinstance(d, Reserve)]  # instance 2 does not come back when r ends
    note = pending_outside_note(busy["dgx"], DGX.inventory.gpus, pending[0].request)
    assert note == "GPU 0 MIG 2 is busy outside tuxai (pid 9 of bob)"
    assert pending_outside_note(busy["dgx"], DGX.inventory.gpus, job("w", 1).request) == ""  # whole GPUs: no matter
