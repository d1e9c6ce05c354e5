"""The score scale through a real round (Postgres, Redis DB 15, a Celery worker, an API server,
the tiny model): the candidate is calibrated before the gate, serves calibrated scores on the
reference scale, matches the parent on the anchors within its fit residual, and a rollback
restores the parent's model and map."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from app.corpus.store import ImageStore
from tests.integration.test_rounds_pipeline import (
    AUTH,
    SMALL_ROUND,
    Stack,
    _files,
    _wait_round,
    _wait_serving,
    pipeline_stack,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANCHORS = 16
REDIS_DB = 15


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with pipeline_stack(
        tmp_path_factory.mktemp("scale-rounds"), REDIS_DB, EVOQ_ANCHOR_SET_SIZE=str(ANCHORS)
    ) as running:
        yield running


def _anchor_set(stack: Stack, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{stack.url}/v1/admin/anchors", headers=AUTH).json()
        if body["current"] is not None:
            return body
        time.sleep(0.3)
    pytest.fail("the anchor set was never frozen")


def _score_anchors(stack: Stack, anchors: list[dict]) -> list[dict]:
    store = ImageStore(stack.data_dir / "anchors")
    files = [
        ("files", (f"{a['idx']}.png", store.find(a["sha256"]).read_bytes(), "image/png"))
        for a in anchors
    ]
    response = httpx.post(f"{stack.url}/v1/score", files=files, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def _version(stack: Stack, version_id: int) -> dict:
    return httpx.get(f"{stack.url}/v1/models/{version_id}").json()


def test_a_promoted_round_keeps_the_scale_and_rollback_restores_the_map(stack) -> None:
    upload = httpx.post(f"{stack.url}/v1/corpus/images", files=_files(12), timeout=60)
    assert upload.json()["stored"] == 12
    frozen = _anchor_set(stack)
    base = httpx.get(f"{stack.url}/v1/models").json()["active_version"]
    assert frozen["current"]["reference_version_id"] == base
    anchors = frozen["anchors"]
    targets = np.array([a["target"] for a in anchors])

    started = httpx.post(f"{stack.url}/v1/admin/rounds", json={"config": SMALL_ROUND}, headers=AUTH)
    assert started.status_code == 201, started.text
    done = _wait_round(stack, started.json()["id"], lambda b: b["finished_at"] is not None)
    assert done["status"] == "promoted", done
    checks = {c["name"]: c for c in done["gate"]["checks"]}
    assert checks["scale_calibration"]["passed"]
    assert checks["scale_drift_raw"]["value"] >= 0
    candidate = done["candidate_version_id"]

    calibration = _version(stack, candidate)["calibration"]
    assert calibration["method"] == "isotonic" and calibration["anchors"] == ANCHORS
    assert calibration["reference_version_id"] == base
    assert calibration["anchor_set_id"] == frozen["current"]["id"]
    assert calibration["raw_drift"] == pytest.approx(checks["scale_drift_raw"]["value"])
    assert calibration["residual"] == pytest.approx(checks["scale_calibration"]["value"])

    _wait_serving(stack, candidate)
    served = _score_anchors(stack, anchors)
    assert {r["model_version"] for r in served} == {candidate}
    assert {r["scale"] for r in served} == {base}
    calibrated = np.array([r["score"] for r in served])
    raw = np.array([r["raw_score"] for r in served])
    # The candidate's calibrated anchor scores match the parent's (the targets) within the
    # residual of its fit (a small slack: the API batches images differently from the worker).
    assert np.mean(np.abs(calibrated - targets)) <= calibration["residual"] + 1e-4
    # Rankings never change under the map.
    assert (np.argsort(raw, kind="stable") == np.argsort(calibrated, kind="stable")).all()

    rolled = httpx.post(f"{stack.url}/v1/admin/rollback", json={"reason": "test"}, headers=AUTH)
    assert rolled.status_code == 200 and rolled.json()["version_id"] == base
    _wait_serving(stack, base)
    back = _score_anchors(stack, anchors)
    assert {r["model_version"] for r in back} == {base} and {r["scale"] for r in back} == {base}
    back_scores = np.array([r["score"] for r in back])
    assert np.allclose(back_scores, [r["raw_score"] for r in back])  # the reference: identity
    assert np.allclose(back_scores, targets, atol=1e-4)
