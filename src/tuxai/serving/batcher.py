"""Dynamic batching for one model version: requests queue, merge up to the max batch size, run on
a pool of instances. The merge rule (``merge``/``split``) is pure.

It never waits on an idle queue: a request that finds no other is run at once, so batching
cannot make concurrency-1 latency worse. While every instance is busy, requests pile up and
the next batch takes them all (up to ``max_batch_size``); ``max_queue_delay_ms`` > 0 also
waits that long for more, but only when other requests are already waiting. The queue is
bounded: past ``max_queue`` waiting requests, ``ModelOverloaded`` (HTTP 503, Retry-After).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuxai.errors import ModelOverloaded

Arrays = dict[str, np.ndarray[Any, Any]]


@dataclass
class Pending:
    """One request waiting: its inputs, batch size, and where its answer goes."""

    inputs: Arrays
    size: int
    future: asyncio.Future[Arrays]
    enqueued: float = field(default_factory=time.perf_counter)
    key: tuple[tuple[str, str, tuple[int, ...]], ...] = field(init=False)

    def __post_init__(self) -> None:
        # Requests merge when names, types and non-batch dimensions agree.
        self.key = tuple(sorted((n, a.dtype.str, a.shape[1:]) for n, a in self.inputs.items()))


def merge(requests: list[Pending]) -> Arrays:
    """Concatenate the requests' inputs along the batch axis."""
    if len(requests) == 1:
        return requests[0].inputs
    return {name: np.concatenate([r.inputs[name] for r in requests]) for name in requests[0].inputs}


def split(outputs: Arrays, sizes: list[int]) -> list[Arrays]:
    """Cut batched outputs back into each request's part."""
    if len(sizes) == 1:
        return [outputs]
    parts: list[Arrays] = []
    start = 0
    for size in sizes:
        parts.append({name: array[start : start + size] for name, array in outputs.items()})
        start += size
    return parts


@dataclass
class BatchStats:
    """What the metrics show of one batcher (observed by the app)."""

    batch_sizes: list[int] = field(default_factory=list)  # drained by the metrics
    queue_s: list[float] = field(default_factory=list)


class Batcher:
    """One model version's queue and instances."""

    def __init__(
        self,
        run: Callable[[Arrays], Arrays],
        max_batch_size: int,
        max_queue_delay_ms: float = 0.0,
        instances: int = 1,
        max_queue: int = 1024,
        observe: Callable[[int, list[float]], None] | None = None,
    ) -> None:
        self.run, self.max_batch_size = run, max(1, max_batch_size)
        self.delay_s, self.max_queue = max_queue_delay_ms / 1000, max_queue
        self.queue: deque[Pending] = deque()
        self.executor = ThreadPoolExecutor(max_workers=instances, thread_name_prefix="model")
        self.slots = asyncio.Semaphore(instances)
        self.wake = asyncio.Event()
        self.in_flight = 0
        self.observe = observe
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, inputs: Arrays, size: int) -> Arrays:
        """Queue a request and wait for its outputs. Raises ``ModelOverloaded`` when the queue is full."""
        if len(self.queue) >= self.max_queue:
            raise ModelOverloaded(f"{len(self.queue)} requests are waiting")
        future: asyncio.Future[Arrays] = asyncio.get_running_loop().create_future()
        self.queue.append(Pending(inputs, size, future))
        self.wake.set()
        return await future

    def _take(self) -> list[Pending]:
        first = self.queue.popleft()
        batch, size, key = [first], first.size, first.key
        while self.queue and self.max_batch_size > 1:
            following = self.queue[0]
            if following.key != key or size + following.size > self.max_batch_size:
                break
            batch.append(self.queue.popleft())
            size += following.size
        return batch

    async def _loop(self) -> None:
        while True:
            while not self.queue:
                self.wake.clear()
                await self.wake.wait()
            await self.slots.acquire()
            if self.delay_s and len(self.queue) > 1 and sum(p.size for p in self.queue) < self.max_batch_size:
                await asyncio.sleep(self.delay_s)  # others are waiting: a little longer may fill the batch
            if not self.queue:
                self.slots.release()
                continue
            batch = self._take()
            self.in_flight += len(batch)
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        try:
            merged = merge(batch)
            outputs = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, merged)
            parts = split(outputs, [p.size for p in batch])
            for pending, part in zip(batch, parts, strict=True):
                if not pending.future.done():
                    pending.future.set_result(part)
        except Exception as exc:  # noqa: BLE001 (a failing model answers each request; the worker lives)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
        finally:
            self.in_flight -= len(batch)
            self.slots.release()
            if self.observe is not None:
                self.observe(sum(p.size for p in batch), [started - p.enqueued for p in batch])

    async def drain(self) -> None:
        """Wait until nothing is queued or running (a version swap, a shutdown)."""
        while self.queue or self.in_flight:
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Stop the loop and the instance threads (after ``drain``)."""
        if self.task is not None:
            self.task.cancel()
        self.executor.shutdown(wait=False)
