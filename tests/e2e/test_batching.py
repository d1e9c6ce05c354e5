"""Micro-batching seen from outside: concurrent /v1/score requests share model calls, and a full
queue answers 503 with Retry-After instead of queueing without end."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.badinputs import image_bytes
from tests.e2e.conftest import Server, running_server

pytestmark = pytest.mark.e2e

QUEUE_MAX = 16


@pytest.fixture(scope="module")
def batching_server(tmp_path_factory) -> Iterator[Server]:
    """Batches wait up to 2 s for companions; at most QUEUE_MAX images wait at once, and a batch
    may hold more than that, so a burst stays queued until the wait ends."""
    with running_server(
        tmp_path_factory.mktemp("batching"),
        EVOQ_BATCH_MAX_SIZE=str(2 * QUEUE_MAX),
        EVOQ_BATCH_MAX_WAIT_MS="2000",
        EVOQ_QUEUE_MAX=str(QUEUE_MAX),
    ) as server:
        yield server


def _batch_metrics(server: Server) -> tuple[float, float]:
    """(model calls, images scored) from the evoq_batch_size histogram."""
    text = httpx.get(f"{server.url}/metrics").text
    count = float(re.search(r"^evoq_batch_size_count (\S+)", text, re.M).group(1))
    total = float(re.search(r"^evoq_batch_size_sum (\S+)", text, re.M).group(1))
    return count, total


def _burst(server: Server, n: int) -> list[httpx.Response]:
    """n single-image /v1/score requests released at the same moment from n threads."""
    start = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        files = [("files", (f"b{i}.png", image_bytes("PNG", (40, 40), seed=i), "image/png"))]
        start.wait()
        return httpx.post(f"{server.url}/v1/score", files=files, timeout=120)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_requests_share_model_calls(batching_server: Server) -> None:
    calls_before, images_before = _batch_metrics(batching_server)
    responses = _burst(batching_server, QUEUE_MAX)
    assert [r.status_code for r in responses] == [200] * QUEUE_MAX, responses[0].text
    for i, response in enumerate(responses):
        [result] = response.json()["results"]
        assert result["filename"] == f"b{i}.png" and 1.0 <= result["score"] <= 5.0
    calls_after, images_after = _batch_metrics(batching_server)
    calls, images = calls_after - calls_before, images_after - images_before
    assert images == QUEUE_MAX
    assert calls < images, f"{images} images took {calls} model calls: nothing was batched"


def test_a_full_queue_answers_503_with_retry_after(batching_server: Server) -> None:
    responses = _burst(batching_server, QUEUE_MAX + 8)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    refused = [r for r in responses if r.status_code == 503]
    served = [r for r in responses if r.status_code == 200]
    assert refused, f"no request was refused although {len(responses)} > queue {QUEUE_MAX}"
    assert served, "every request was refused"
    for response in refused:
        body = response.json()
        assert body["error"] == "queue_full" and body["detail"]
        assert int(response.headers["Retry-After"]) == body["retry_after_s"] >= 1
    for response in served:
        assert 1.0 <= response.json()["results"][0]["score"] <= 5.0
    # the server recovers: once the burst is served, a lone request is scored
    again = httpx.post(
        f"{batching_server.url}/v1/score",
        files=[("files", ("late.png", image_bytes("PNG", (40, 40), seed=99), "image/png"))],
        timeout=120,
    )
    assert again.status_code == 200, again.text
