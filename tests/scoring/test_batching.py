"""MicroBatcher: concurrent submits share batches, per key; full queue refuses at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from app.scoring.batching import BatcherStopped, MicroBatcher, QueueFull


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Doubler:
    """A batch function that records each batch it receives and can be held at a gate."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, items: list[Any]) -> list[Any]:
        self.entered.set()
        self.gate.wait(timeout=30)
        self.batches.append(list(items))
        return [item * 2 for item in items]


async def wait_until(condition, *, limit: int = 3000) -> None:  # noqa: ANN001
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never became true")


def test_concurrent_submits_are_batched_together() -> None:
    doubler = Doubler()

    async def scenario() -> list[int]:
        batcher = MicroBatcher(doubler, max_batch=4, max_wait_ms=20)
        await batcher.start()
        try:
            results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
        finally:
            await batcher.stop()
        assert list(batcher.stats.recent_sizes) == [4, 4, 2]
        assert (batcher.stats.batches, batcher.stats.items) == (3, 10)
        return results

    assert run(scenario()) == [2 * i for i in range(10)]
    assert doubler.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_items_arriving_during_a_batch_form_the_next_batch() -> None:
    doubler = Doubler()
    doubler.gate.clear()

    async def scenario() -> None:
        batcher = MicroBatcher(doubler, max_batch=16, max_wait_ms=0)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(100))
        await wait_until(doubler.entered.is_set)  # the model is busy with [100]
        later = [asyncio.ensure_future(batcher.submit(i)) for i in range(5)]
        await wait_until(lambda: batcher.queued == 5)
        doubler.gate.set()
        assert await first == 200
        assert await asyncio.gather(*later) == [0, 2, 4, 6, 8]
        await batcher.stop()

    run(scenario())
    assert doubler.batches == [[100], [0, 1, 2, 3, 4]]


def test_batches_hold_one_key_only() -> None:
    doubler = Doubler()

    async def scenario() -> None:
        batcher = MicroBatcher(doubler, max_batch=8, max_wait_ms=5, key=lambda item: item % 2)
        await batcher.start()
        assert await asyncio.gather(*(batcher.submit(i) for i in range(6))) == [0, 2, 4, 6, 8, 10]
        await batcher.stop()

    run(scenario())
    assert sorted(doubler.batches) == [[0, 2, 4], [1, 3, 5]]


def test_full_queue_refuses_immediately_with_retry_after() -> None:
    doubler = Doubler()
    doubler.gate.clear()

    async def scenario() -> None:
        batcher = MicroBatcher(doubler, max_batch=1, max_wait_ms=0, max_queue=2, retry_after_s=3)
        await batcher.start()
        running = asyncio.ensure_future(batcher.submit(1))
        await wait_until(doubler.entered.is_set)
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3)]
        await wait_until(lambda: batcher.queued == 2)
        with pytest.raises(QueueFull) as caught:
            await batcher.submit(4)
        assert caught.value.status_code == 503
        assert caught.value.headers == {"Retry-After": "3"}
        assert caught.value.to_dict()["error"] == "queue_full"
        assert batcher.stats.rejected == 1
        doubler.gate.set()
        assert await asyncio.gather(running, *queued) == [2, 4, 6]
        await batcher.stop()

    run(scenario())


def test_errors_reach_every_caller_of_the_batch() -> None:
    def explode(items: list[int]) -> list[int]:
        raise ValueError(f"bad batch of {len(items)}")

    async def scenario() -> None:
        batcher = MicroBatcher(explode, max_batch=3, max_wait_ms=50)
        await batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(i) for i in range(3)), return_exceptions=True
        )
        assert [str(result) for result in results] == ["bad batch of 3"] * 3
        assert batcher.stats.failed_batches == 1
        await batcher.stop()

    run(scenario())


def test_wrong_number_of_results_is_an_error() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(lambda items: items[:1], max_batch=2, max_wait_ms=50)
        await batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(i) for i in range(2)), return_exceptions=True
        )
        assert all(isinstance(result, RuntimeError) for result in results)
        await batcher.stop()

    run(scenario())


def test_cancelled_callers_are_left_out() -> None:
    doubler = Doubler()
    doubler.gate.clear()

    async def scenario() -> None:
        batcher = MicroBatcher(doubler, max_batch=8, max_wait_ms=0)
        await batcher.start()
        busy = asyncio.ensure_future(batcher.submit(0))
        await wait_until(doubler.entered.is_set)
        gone, kept = (
            asyncio.ensure_future(batcher.submit(1)),
            asyncio.ensure_future(batcher.submit(2)),
        )
        await wait_until(lambda: batcher.queued == 2)
        gone.cancel()
        doubler.gate.set()
        assert (await busy, await kept) == (0, 4)
        await batcher.stop()

    run(scenario())
    assert doubler.batches == [[0], [2]]


def test_stop_drains_then_refuses() -> None:
    doubler = Doubler()

    async def scenario() -> None:
        batcher = MicroBatcher(doubler, max_batch=100, max_wait_ms=60_000)
        with pytest.raises(BatcherStopped):
            await batcher.submit(1)
        await batcher.start()
        pending = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
        await wait_until(lambda: batcher.queued == 3)
        await batcher.stop()  # does not wait out the 60 s: flushes what is queued
        assert [task.result() for task in pending] == [0, 2, 4]
        with pytest.raises(BatcherStopped):
            await batcher.submit(1)

    run(scenario())


def test_on_batch_hook_sees_key_and_size() -> None:
    seen: list[tuple[object, int]] = []

    async def scenario() -> None:
        batcher = MicroBatcher(
            Doubler(),
            max_batch=2,
            max_wait_ms=5,
            key=lambda item: "even" if item % 2 == 0 else "odd",
            on_batch=lambda key, size, seconds: seen.append((key, size)),
        )
        await batcher.start()
        await asyncio.gather(*(batcher.submit(i) for i in (0, 2, 1)))
        await batcher.stop()

    run(scenario())
    assert sorted(seen) == [("even", 2), ("odd", 1)]
