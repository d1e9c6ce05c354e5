"""Round estimates (at creation and on their own), the round detail's calibration summary and its
full map, and /metrics naming the console's routes, against a real server with no worker.
Cost: one server start (~15 s)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.orm import Session

from app.db import make_engine
from app.models import Round
from tests.badinputs import image_bytes
from tests.e2e.conftest import ADMIN_TOKEN, Server, running_server

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SMALL = {"pairs": 40, "votes": 2, "samples": 2, "max_steps": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("operator"), EVOQ_ADMIN_TOKEN=ADMIN_TOKEN) as s:
        yield s


def _estimate(server: Server, config: dict) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/admin/rounds/estimate", json={"config": config}, headers=AUTH, timeout=60
    )


def _start_round(server: Server, config: dict, seed: int) -> dict:
    """A pending round of its own: corpus images of its own first (no worker takes it)."""
    files = [
        ("files", (f"r{i}.png", image_bytes("PNG", (32, 32), seed=seed + i), "image/png"))
        for i in range(3)
    ]
    assert httpx.post(f"{server.url}/v1/corpus/images", files=files, headers=AUTH).is_success
    started = httpx.post(
        f"{server.url}/v1/admin/rounds", json={"config": config}, headers=AUTH, timeout=60
    )
    assert started.status_code == 201, started.text
    return started.json()


def _cancel(server: Server, round_id: int) -> None:
    httpx.post(f"{server.url}/v1/admin/rounds/{round_id}/cancel", headers=AUTH)


def test_the_estimate_flags_a_paper_scale_round_on_this_cpu(server: Server) -> None:
    paper = _estimate(server, {})  # the defaults: 20000 pairs, K=32, G=32, one pass
    assert paper.status_code == 200, paper.text
    body = paper.json()
    assert set(body) >= {"seconds", "stages", "device", "warning"}
    assert [s["stage"] for s in body["stages"]] == ["vote", "train", "evaluate"]
    assert body["seconds"] == pytest.approx(sum(s["seconds"] for s in body["stages"]))
    assert body["device"].startswith("cpu") and "FLOP/s" in body["device"]
    assert body["seconds"] > 3600 and "hours" in body["warning"]
    assert body["model_params"] > 0  # counted from the serving version's safetensors

    small = _estimate(server, SMALL).json()
    assert small["warning"] is None and 0 < small["seconds"] < body["seconds"]
    # max_steps bounds the training stage; the voting stage does not depend on it.
    longer = _estimate(server, {**SMALL, "max_steps": 2}).json()
    assert longer["stages"][1]["seconds"] == pytest.approx(2 * small["stages"][1]["seconds"])
    assert longer["stages"][0]["seconds"] == pytest.approx(small["stages"][0]["seconds"])

    invalid = _estimate(server, {"pairs": 1})
    assert invalid.status_code == 422 and "pairs" in invalid.json()["detail"]
    anonymous = httpx.post(f"{server.url}/v1/admin/rounds/estimate", json={"config": {}})
    assert anonymous.status_code == 401


def test_starting_a_round_answers_with_its_estimate(server: Server) -> None:
    started = _start_round(server, {}, seed=900)  # the API accepts it: operators decide
    try:
        estimate = started["estimate"]
        assert estimate["warning"] and estimate["seconds"] > 3600
        assert estimate["seconds"] == pytest.approx(_estimate(server, {}).json()["seconds"])
        again = httpx.get(f"{server.url}/v1/admin/rounds/{started['id']}", headers=AUTH).json()
        assert again["estimate"] is None  # only the answer that starts it carries one
    finally:
        _cancel(server, started["id"])


def test_the_round_detail_summarizes_the_calibration_map(server: Server) -> None:
    started = _start_round(server, SMALL, seed=950)
    _cancel(server, started["id"])
    rid = started["id"]
    missing = httpx.get(f"{server.url}/v1/admin/rounds/{rid}/calibration", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"] == "no_calibration"

    # What the calibration stage writes: a 256-point map (written here; no worker runs).
    xs = [1 + 4 * i / 255 for i in range(256)]
    record = {
        "anchor_set_id": 1,
        "reference_version_id": 1,
        "anchors": 256,
        "raw_drift": 0.1,
        "fit": True,
        "residual": 0.05,
        "rmse": 0.07,
        "map": {"method": "isotonic", "xs": xs, "ys": xs},
    }
    engine = make_engine(f"sqlite:///{server.data_dir / 'evoq.sqlite3'}")
    with Session(engine) as db:
        found = db.get(Round, rid)
        found.progress = {**found.progress, "calibration": record}
        db.commit()
    engine.dispose()

    detail = httpx.get(f"{server.url}/v1/admin/rounds/{rid}", headers=AUTH)
    summary = detail.json()["progress"]["calibration"]
    assert summary["map"] == {"method": "isotonic", "points": 256}
    assert summary["residual"] == 0.05 and summary["anchors"] == 256
    assert len(detail.content) < 4000
    listed = httpx.get(f"{server.url}/v1/admin/rounds", headers=AUTH).json()["items"]
    assert next(r for r in listed if r["id"] == rid)["progress"]["calibration"]["map"]["points"]
    full = httpx.get(f"{server.url}/v1/admin/rounds/{rid}/calibration", headers=AUTH)
    assert full.status_code == 200 and full.json() == record
    assert httpx.get(f"{server.url}/v1/admin/rounds/{rid}/calibration").status_code == 401
    unknown = httpx.get(f"{server.url}/v1/admin/rounds/987654/calibration", headers=AUTH)
    assert unknown.status_code == 404


def _unmatched(url: str) -> float:
    """Requests counted under route="unmatched" so far."""
    metrics = httpx.get(f"{url}/metrics").text
    pattern = r'evoq_http_requests_total\{method="[A-Z]+",route="unmatched",status="\d+"\} (\S+)'
    return sum(float(v) for v in re.findall(pattern, metrics))


def test_metrics_name_the_console_routes(server: Server) -> None:
    before = _unmatched(server.url)
    visits = ["/console/score", "/console/rounds/7", "/console/static/console.css", "/console"]
    for path in visits:
        assert httpx.get(f"{server.url}{path}", follow_redirects=True).status_code == 200
    assert _unmatched(server.url) == before
    metrics = httpx.get(f"{server.url}/metrics").text
    routes = set(re.findall(r'evoq_http_requests_total\{method="GET",route="([^"]+)"', metrics))
    assert {
        "/console",
        "/console/score",
        "/console/rounds/{round_id}",
        "/console/static/{path}",
    } <= routes
    httpx.get(f"{server.url}/no/such/page")  # unknown paths still share one label
    assert _unmatched(server.url) == before + 1
