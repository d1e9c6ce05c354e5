"""Two clients upload the same images at the same moment, to two API replicas on one Postgres
database and one image store: every image is stored exactly once, each answer says stored or
duplicate, nothing is a 5xx, and no file in the store lacks its row.
Cost: ~15-30 s (two server starts, 8 racing upload pairs)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests import badinputs
from tests.support.services import (
    base_env,
    evoq_argv,
    free_port,
    fresh_postgres_database,
    start_process,
    stop,
    tail,
    wait_http,
)

pytestmark = pytest.mark.integration

ROUNDS = 4
IMAGES_PER_ROUND = 24


@pytest.fixture(scope="module")
def replicas(tmp_path_factory) -> Iterator[tuple[list[str], Path, str]]:
    root = tmp_path_factory.mktemp("concurrency")
    with fresh_postgres_database() as db_url:
        urls, procs = [], []
        try:
            for i in range(2):  # one after the other: each migrates and bootstraps at start
                port = free_port()
                env = base_env(
                    EVOQ_DATABASE_URL=db_url,
                    EVOQ_DATA_DIR=str(root / "data"),
                    EVOQ_PORT=str(port),
                    EVOQ_EMBEDDED_WORKER="false",
                )
                procs.append(start_process(evoq_argv("serve"), env, root / f"server{i}.log"))
                urls.append(f"http://127.0.0.1:{port}")
                wait_http(f"{urls[-1]}/readyz", timeout=240, proc=procs[-1])
            yield urls, root / "data" / "images", db_url
        finally:
            for i, proc in enumerate(procs):
                assert stop(proc) == 0, tail(root / f"server{i}.log")


def _race(urls: list[str], parts: list) -> list[httpx.Response]:
    """Both replicas receive the same upload, released at the same instant."""
    barrier = threading.Barrier(len(urls))

    def send(url: str) -> httpx.Response:
        with httpx.Client(timeout=120) as client:
            barrier.wait()
            return client.post(f"{url}/v1/corpus/images", files=parts)

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(send, urls))


def _images(round_no: int) -> dict[str, bytes]:
    return {
        f"r{round_no}-{i:02d}.png": badinputs.image_bytes(
            "PNG", (20, 20), seed=10_000 * round_no + i
        )
        for i in range(IMAGES_PER_ROUND)
    }


def _rows(db_url: str) -> dict[str, str]:
    """Every stored image's sha256 and path, straight from the shared database."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT sha256, path FROM images")).all())
    engine.dispose()
    return rows


@pytest.mark.parametrize("as_zip", [False, True], ids=["files", "zip"])
def test_racing_uploads_store_each_image_exactly_once(replicas, as_zip: bool) -> None:
    urls, store_root, db_url = replicas
    # The replicas are shared by both cases (in any order): count from this test's start.
    rows_before = _rows(db_url)
    for round_no in range(ROUNDS):
        images = _images(round_no + (100 if as_zip else 0))
        if as_zip:
            parts = [("files", ("batch.zip", badinputs.zip_bytes(images), "application/zip"))]
        else:
            parts = [("files", (n, d, "image/png")) for n, d in images.items()]
        responses = _race(urls, parts)
        for response in responses:
            assert response.status_code == 200, response.text
        statuses: dict[str, list[str]] = {}
        for response in responses:
            for result in response.json()["results"]:
                statuses.setdefault(result["sha256"], []).append(result["status"])
        assert len(statuses) == IMAGES_PER_ROUND
        for sha, seen in statuses.items():
            assert sorted(seen) == ["duplicate", "stored"], (sha, seen)

    rows = _rows(db_url)
    files = {p.name.split(".")[0]: p for p in store_root.rglob("*") if p.is_file()}
    assert not [p for p in store_root.rglob(".partial-*")]
    assert set(files) == set(rows), "orphan files or rows without a file"
    assert all(Path(rows[sha]).is_file() for sha in rows)
    # Each case's images are its own (distinct seeds): exactly those rows are new.
    assert set(rows_before) <= set(rows)
    assert len(rows) - len(rows_before) == ROUNDS * IMAGES_PER_ROUND
