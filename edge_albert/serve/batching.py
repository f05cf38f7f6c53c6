"""Dynamic micro-batching: requests that arrive together run as one model call.

One worker per model takes the first waiting request, then gathers more until the batch holds
`max_batch_size` records or `max_wait_s` has passed, and runs the batch on the model's own
thread (a TFLite interpreter must not be called from two threads at once). The queue is bounded:
a full queue refuses at once (the server answers 503), so memory never grows with the load.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from .metrics import ServerMetrics

RunBatch = Callable[[List[dict]], List[dict]]


class QueueFull(Exception):
    """The model's queue holds `max_queue` requests already; the client should retry later."""


class DeadlineExceeded(Exception):
    """No result within the request's timeout; the request is dropped if it has not started."""


@dataclass
class _Job:
    records: List[dict]
    future: asyncio.Future
    abandoned: bool = field(default=False)


class MicroBatcher:
    """A bounded queue in front of one model; `submit` returns one result per record, in order."""

    def __init__(self, name: str, run_batch: RunBatch, metrics: ServerMetrics, max_batch_size: int = 32,
                 max_wait_s: float = 0.002, max_queue: int = 64):
        self.name = name
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self._run_batch = run_batch
        self._metrics = metrics
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=max(1, int(max_queue)))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{name}")
        self._worker: Optional[asyncio.Task] = None
        self._carried: Optional[_Job] = None  # a job that did not fit the previous batch goes first next time

    @property
    def max_queue(self) -> int:
        return self._queue.maxsize

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        """Stop the worker after the running batch; fail whatever still waits (the server drains first)."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(QueueFull("the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, records: List[dict], timeout_s: float) -> List[dict]:
        """Queue the records as one job; raise QueueFull at once, DeadlineExceeded after `timeout_s`."""
        if not records:
            return []
        job = _Job(records, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFull(f"{self._queue.qsize()} requests are queued for {self.name}") from None
        self._metrics.queue_depth.labels(self.name).set(self._queue.qsize())
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout_s)
        except asyncio.TimeoutError:
            job.abandoned = True  # skipped if it has not started; a running batch finishes regardless
            raise DeadlineExceeded(f"no result within {timeout_s:g} s") from None

    async def _next_job(self, timeout_s: Optional[float]) -> Optional[_Job]:
        if self._carried is not None:
            job, self._carried = self._carried, None
            return job
        try:
            if timeout_s is None:
                job = await self._queue.get()
            elif timeout_s <= 0:
                job = self._queue.get_nowait()
            else:
                job = await asyncio.wait_for(self._queue.get(), timeout_s)
        except (asyncio.TimeoutError, asyncio.QueueEmpty):
            return None
        self._metrics.queue_depth.labels(self.name).set(self._queue.qsize())
        return job

    async def _gather(self) -> List[_Job]:
        """The first job, then more until the batch is full or the wait is over."""
        loop = asyncio.get_running_loop()
        first = await self._next_job(None)
        jobs, count = [first], len(first.records)
        deadline = loop.time() + self.max_wait_s
        while count < self.max_batch_size:
            job = await self._next_job(deadline - loop.time())
            if job is None:
                break
            if count + len(job.records) > self.max_batch_size:
                self._carried = job
                break
            jobs.append(job)
            count += len(job.records)
        return [job for job in jobs if not job.abandoned and not job.future.done()]

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            if not jobs:
                continue
            records = [record for job in jobs for record in job.records]
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, records)
            except Exception as exc:  # the records were validated, so this is a server fault: fail these jobs only
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self._metrics.inference_seconds.labels(self.name).observe(time.perf_counter() - started)
            self._metrics.batch_size.labels(self.name).observe(len(records))
            offset = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(results[offset:offset + len(job.records)])
                offset += len(job.records)
