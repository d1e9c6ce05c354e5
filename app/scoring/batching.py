"""Coalesce concurrent scoring calls into batches for one model (bounded wait, bounded queue)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.errors import EvoqError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(EvoqError):
    """Too many items waiting; answered 503 with Retry-After rather than queueing without end."""

    def __init__(self, max_queue: int, retry_after_s: int) -> None:
        super().__init__(
            code="queue_full",
            detail=f"{max_queue} images are already waiting to be scored; retry shortly",
            status_code=503,
            extra={"retry_after_s": retry_after_s},
            headers={"Retry-After": str(retry_after_s)},
        )


class BatcherStopped(EvoqError):
    """The batcher is not running (shutting down or not started)."""

    def __init__(self) -> None:
        super().__init__(
            code="not_ready", detail="the scoring queue is not running", status_code=503
        )


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    since: float


@dataclass
class BatchStats:
    """What the batcher did; `recent_sizes` shows whether requests were served together."""

    batches: int = 0
    items: int = 0
    rejected: int = 0
    failed_batches: int = 0
    recent_sizes: collections.deque[int] = field(
        default_factory=lambda: collections.deque(maxlen=1000)
    )


class MicroBatcher(Generic[T, R]):
    """Collects submitted items into batches of one key and runs them in a worker thread.

    A batch goes when it holds `max_batch` items or its oldest item has waited `max_wait_ms`;
    batches run one at a time, so items arriving meanwhile form the next batch.
    """

    def __init__(
        self,
        process_batch: Callable[[list[T]], list[R]],
        *,
        max_batch: int = 8,
        max_wait_ms: float = 10.0,
        max_queue: int = 256,
        key: Callable[[T], Hashable] = lambda item: None,
        retry_after_s: int = 1,
        on_batch: Callable[[Hashable, int, float], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be ≥ 1, max_wait_ms ≥ 0")
        self.process_batch = process_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.key = key
        self.retry_after_s = retry_after_s
        self.on_batch = on_batch
        self.stats = BatchStats()
        self._groups: dict[Hashable, list[_Waiting[T, R]]] = {}
        self._waiting = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued(self) -> int:
        """Items submitted and not yet handed to a batch."""
        return self._waiting

    async def start(self) -> None:
        """Start the dispatcher on the running event loop."""
        if self._task is not None:
            return
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evoq-batch")
        self._task = asyncio.create_task(self._dispatch(), name="micro-batcher")

    async def stop(self) -> None:
        """Refuse new items, run every item already queued, then stop."""
        if self._task is None:
            return
        self._closing = True
        self._wakeup.set()
        await self._task
        self._task = None
        assert self._executor is not None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def submit(self, item: T) -> R:
        """The result for `item`, computed in some batch; QueueFull at once when the queue is full."""
        if self._task is None or self._closing:
            raise BatcherStopped()
        if self._waiting >= self.max_queue:
            self.stats.rejected += 1
            raise QueueFull(self.max_queue, self.retry_after_s)
        loop = asyncio.get_running_loop()
        waiting = _Waiting(item, loop.create_future(), loop.time())
        self._groups.setdefault(self.key(item), []).append(waiting)
        self._waiting += 1
        self._wakeup.set()
        return await waiting.future

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._groups:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            picked = self._ready_group(loop.time())
            if picked is None:
                oldest = min(group[0].since for group in self._groups.values())
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), oldest + self.max_wait_s - loop.time()
                    )
                continue
            key = picked[0]
            group = self._groups[key]
            batch, rest = group[: self.max_batch], group[self.max_batch :]
            if rest:
                self._groups[key] = rest
            else:
                del self._groups[key]
            self._waiting -= len(batch)
            await self._run(key, batch, loop)

    def _ready_group(self, now: float) -> tuple[Hashable] | None:
        """(key,) of the group to run now (full, overdue or draining), oldest first; else None."""
        ready = [
            (group[0].since, index, key)
            for index, (key, group) in enumerate(self._groups.items())
            if self._closing
            or len(group) >= self.max_batch
            or now - group[0].since >= self.max_wait_s
        ]
        return (min(ready)[2],) if ready else None

    async def _run(
        self, key: Hashable, batch: list[_Waiting[T, R]], loop: asyncio.AbstractEventLoop
    ) -> None:
        live = [waiting for waiting in batch if not waiting.future.done()]  # callers gone
        if not live:
            return
        started = loop.time()
        try:
            results = await loop.run_in_executor(
                self._executor, self.process_batch, [waiting.item for waiting in live]
            )
            if len(results) != len(live):
                raise RuntimeError(f"process_batch returned {len(results)} results for {len(live)}")
        except Exception as exc:  # every caller of the batch learns why
            self.stats.failed_batches += 1
            for waiting in live:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        finally:
            self.stats.batches += 1
            self.stats.items += len(live)
            self.stats.recent_sizes.append(len(live))
            if self.on_batch is not None:
                try:
                    self.on_batch(key, len(live), loop.time() - started)
                except Exception:  # metrics must never stall the queue
                    logger.exception("on_batch hook failed")
        for waiting, result in zip(live, results, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(result)
