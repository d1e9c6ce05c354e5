"""The score scale against a real server: the anchor set frozen at the first activation, scores
carrying score/raw_score/scale, version maps in /v1/models, replacing the anchor set."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.badinputs import image_bytes
from tests.e2e.conftest import Server, running_server

pytestmark = pytest.mark.e2e

TOKEN = "scale-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANCHORS = 12


@pytest.fixture(scope="module")
def started(tmp_path_factory) -> Iterator[tuple[Server, dict]]:
    """The shared server and its anchor state at the first freeze, before any test changed it.

    Tests run in any order and some replace the anchor set, so the first activation's set is
    captured here, not read back later."""
    with running_server(
        tmp_path_factory.mktemp("scale"),
        EVOQ_ADMIN_TOKEN=TOKEN,
        EVOQ_ANCHOR_SET_SIZE=str(ANCHORS),
        EVOQ_ACTIVATION_POLL_SECONDS="0.3",
        EVOQ_SCORING_PROCESS="true",  # calibrated scores from the default model process
    ) as running:
        yield running, _frozen(running)


@pytest.fixture
def server(started: tuple[Server, dict]) -> Server:
    return started[0]


def _anchors(server: Server) -> dict:
    response = httpx.get(f"{server.url}/v1/admin/anchors", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _frozen(server: Server, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = _anchors(server)
        if body["current"] is not None:
            return body
        time.sleep(0.3)
    pytest.fail("the anchor set was never frozen")


def _png(seed: int) -> tuple[str, tuple[str, bytes, str]]:
    return ("files", (f"a{seed}.png", image_bytes("PNG", (40, 40), seed=seed), "image/png"))


def test_first_activation_freezes_synthetic_anchors(started) -> None:
    server, body = started
    active = httpx.get(f"{server.url}/v1/models").json()["active_version"]
    current = body["current"]
    assert current["source"] == "synthetic" and current["size"] == ANCHORS
    assert current["reference_version_id"] == current["scored_by_version_id"] == active
    assert len(body["anchors"]) == ANCHORS and len(body["history"]) == 1
    assert all(1.0 <= a["target"] <= 5.0 for a in body["anchors"])
    # Later replacements (by other tests) keep the first set as the oldest entry.
    assert _anchors(server)["history"][-1]["id"] == current["id"]


def test_scores_carry_calibrated_raw_and_scale(server) -> None:
    _frozen(server)
    active = httpx.get(f"{server.url}/v1/models").json()["active_version"]
    deadline = time.monotonic() + 30
    while True:  # the watcher serves the reference's (identity) map within a poll
        result = httpx.post(f"{server.url}/v1/score", files=[_png(1)], timeout=60).json()[
            "results"
        ][0]
        if result["scale"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert result["scale"] == active
    assert result["score"] == pytest.approx(result["raw_score"], abs=1e-9)  # identity map
    assert 1.0 <= result["score"] <= 5.0


def test_models_show_the_reference_map(server) -> None:
    _frozen(server)
    models = httpx.get(f"{server.url}/v1/models").json()
    active = next(v for v in models["versions"] if v["id"] == models["active_version"])
    calibration = active["calibration"]
    assert calibration["method"] == "identity" and calibration["residual"] == 0.0
    assert calibration["anchors"] == ANCHORS and calibration["reference_version_id"] == active["id"]
    one = httpx.get(f"{server.url}/v1/models/{active['id']}").json()
    assert one["calibration"] == calibration


def test_operator_replaces_the_anchor_set_and_the_change_is_recorded(server) -> None:
    before = _frozen(server)
    files = [_png(100 + i) for i in range(10)]
    response = httpx.post(
        f"{server.url}/v1/admin/anchors",
        headers=AUTH,
        files=files,
        data={"reason": "our own reference photos"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["current"]["source"] == "upload" and body["current"]["size"] == 10
    assert body["current"]["reason"] == "our own reference photos"
    assert body["current"]["actor"] == "admin"
    # The scale stays the reference version's; the old set stays in the history.
    assert body["current"]["reference_version_id"] == before["current"]["reference_version_id"]
    # Newest first; other tests may have replaced the set before this one.
    before_ids = [s["id"] for s in before["history"]]
    assert [s["id"] for s in body["history"]] == [body["current"]["id"], *before_ids]
    assert before_ids[0] == before["current"]["id"]
    shas = {hashlib.sha256(f[1][1]).hexdigest() for f in files}
    assert {a["sha256"] for a in body["anchors"]} == shas
    # Targets are the serving version's calibrated scores of the same images.
    scored = httpx.post(f"{server.url}/v1/score", files=files, timeout=120).json()["results"]
    by_sha = {r["sha256"]: r["score"] for r in scored}
    for anchor in body["anchors"]:
        assert anchor["target"] == pytest.approx(by_sha[anchor["sha256"]], abs=1e-6)


def test_bad_anchor_replacements_are_refused_and_lose_nothing(server) -> None:
    before = _anchors(server)
    url = f"{server.url}/v1/admin/anchors"
    unauthorised = httpx.post(url, files=[_png(1)])
    assert unauthorised.status_code == 401
    too_few = httpx.post(url, headers=AUTH, files=[_png(1), _png(2)], timeout=60)
    assert too_few.status_code == 422 and too_few.json()["error"] == "too_few_anchors"
    malformed = httpx.post(url, headers=AUTH, files=[_png(1)], data={"sha256": "abc"})
    assert malformed.status_code == 422 and malformed.json()["error"] == "invalid_sha256"
    unknown = httpx.post(url, headers=AUTH, files=[_png(1)], data={"sha256": "0" * 64})
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_image"
    corrupt = httpx.post(
        url, headers=AUTH, files=[("files", ("x.png", b"\x89PNG\r\n\x1a\nbroken", "image/png"))]
    )
    assert corrupt.status_code in (415, 422) and corrupt.json()["filename"] == "x.png"
    assert _anchors(server) == before


def test_corpus_images_become_anchors_by_sha256(server) -> None:
    files = [_png(300 + i) for i in range(8)]
    upload = httpx.post(f"{server.url}/v1/corpus/images", files=files, timeout=60)
    assert upload.status_code == 200, upload.text
    shas = [r["sha256"] for r in upload.json()["results"]]
    response = httpx.post(
        f"{server.url}/v1/admin/anchors",
        headers=AUTH,
        files=[_png(400)],
        data={"sha256": ",".join(shas)},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["current"]["source"] == "mixed" and body["current"]["size"] == 9
    assert {a["sha256"] for a in body["anchors"]} >= set(shas)
