"""Score, compare, corpus and registry endpoints against a real server process."""

from __future__ import annotations

import hashlib
import re
import time

import httpx
import pytest

from tests.badinputs import image_bytes, zip_bytes
from tests.e2e.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e


def _files(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in items]


def test_score_answers_per_image_in_upload_order(api_server) -> None:
    images = [(f"img{i}.png", image_bytes("PNG", (40 + i, 30), seed=i)) for i in range(3)]
    response = httpx.post(f"{api_server.url}/v1/score", files=_files(*images), timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["elapsed_ms"] > 0
    assert [r["filename"] for r in body["results"]] == ["img0.png", "img1.png", "img2.png"]
    models = httpx.get(f"{api_server.url}/v1/models").json()
    for (_name, data), result in zip(images, body["results"], strict=True):
        assert result["sha256"] == hashlib.sha256(data).hexdigest()
        assert 1.0 <= result["score"] <= 5.0
        assert result["level"] in {"bad", "poor", "fair", "good", "excellent"}
        assert result["model_version"] == models["active_version"]
        assert result["stored"] is None


def test_sampled_score_with_explanations(api_server) -> None:
    data = image_bytes("JPEG", (48, 48), seed=7)
    response = httpx.post(
        f"{api_server.url}/v1/score",
        files=_files(("a.jpg", data)),
        data={"mode": "sampled", "samples": "4", "explain": "true"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["n"] == 4 and len(result["explanations"]) == 4
    assert 0 <= result["valid"] <= 4


def test_score_rejects_bad_parameters_by_name(api_server) -> None:
    response = httpx.post(
        f"{api_server.url}/v1/score",
        files=_files(("a.png", image_bytes())),
        data={"mode": "psychic"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_parameters" and "mode" in response.json()["detail"]


def test_compare_logits_is_a_probability_and_sampled_counts_votes(api_server) -> None:
    a, b = image_bytes("PNG", (40, 40), seed=1), image_bytes("PNG", (40, 40), seed=2)
    logits = httpx.post(f"{api_server.url}/v1/compare", files=_files(("a.png", a), ("b.png", b)))
    assert logits.status_code == 200, logits.text
    body = logits.json()
    assert 0.0 <= body["p_first_better"] <= 1.0 and body["mode"] == "logits"
    sampled = httpx.post(
        f"{api_server.url}/v1/compare",
        files=_files(("a.png", a), ("b.png", b)),
        data={"mode": "sampled", "votes": "8"},
        timeout=120,
    ).json()
    assert sampled["votes_first"] + sampled["votes_second"] + sampled["invalid_votes"] == 8
    one = httpx.post(f"{api_server.url}/v1/compare", files=_files(("a.png", a)))
    assert one.status_code == 422 and one.json()["error"] == "need_two_files"


def test_corpus_upload_dedupes_and_lists_and_deletes(api_server) -> None:
    a, b = image_bytes("PNG", (33, 33), seed=11), image_bytes("WEBP", (34, 34), seed=12)
    archive = zip_bytes({"inner/a-again.png": a, "c.bmp": image_bytes("BMP", (20, 20), seed=13)})
    response = httpx.post(
        f"{api_server.url}/v1/corpus/images",
        files=_files(("a.png", a), ("b.webp", b), ("batch.zip", archive)),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    statuses = [(r["filename"], r["status"]) for r in body["results"]]
    assert statuses == [
        ("a.png", "stored"),
        ("b.webp", "stored"),
        ("batch.zip:inner/a-again.png", "duplicate"),
        ("batch.zip:c.bmp", "stored"),
    ]
    assert "a.png" in body["results"][2]["duplicate_of"]
    again = httpx.post(f"{api_server.url}/v1/corpus/images", files=_files(("b2.webp", b))).json()
    assert again["results"][0]["status"] == "duplicate"
    assert "corpus image" in again["results"][0]["duplicate_of"]

    sha_a = hashlib.sha256(a).hexdigest()
    stats = httpx.get(f"{api_server.url}/v1/corpus").json()
    assert stats["images"] >= 3
    page = httpx.get(f"{api_server.url}/v1/corpus/images", params={"limit": 500}).json()
    assert sha_a in {item["sha256"] for item in page["items"]}
    stored = list(api_server.data_dir.glob(f"images/*/*/{sha_a}.png"))
    assert len(stored) == 1 and stored[0].read_bytes() == a

    delete = f"{api_server.url}/v1/corpus/images/{sha_a}"
    assert httpx.delete(delete).status_code == 401  # a token is configured: deleting needs it
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert httpx.delete(delete, headers=auth).status_code == 204
    assert not stored[0].exists()
    assert httpx.delete(delete, headers=auth).status_code == 404
    after = httpx.get(f"{api_server.url}/v1/corpus").json()
    assert after["images"] == stats["images"] - 1


def test_score_store_true_adds_to_corpus_with_opt_out(api_server) -> None:
    data = image_bytes("PNG", (35, 36), seed=21)
    response = httpx.post(
        f"{api_server.url}/v1/score",
        files=_files(("keep.png", data)),
        data={"store": "true", "train_opt_out": "true"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["stored"] is True
    page = httpx.get(f"{api_server.url}/v1/corpus/images", params={"limit": 500}).json()
    row = next(i for i in page["items"] if i["sha256"] == hashlib.sha256(data).hexdigest())
    assert row["train_opt_out"] is True and row["source"] == "score"


def test_models_lists_the_registered_base_version(api_server) -> None:
    body = httpx.get(f"{api_server.url}/v1/models").json()
    # Other tests of this module may register and activate versions first (any order): the
    # base is the first version registered, activated first, by the system.
    base = min(body["versions"], key=lambda v: v["id"])
    assert base["lineage"] == [base["id"]]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", base["digest"])  # over the weight files
    first = min(body["activations"], key=lambda a: a["id"])
    assert first["actor"] == "system" and first["version_id"] == base["id"]
    active = next(v for v in body["versions"] if v["id"] == body["active_version"])
    assert active["active"] and active["status"] == "active"
    assert httpx.get(f"{api_server.url}/v1/models/999999").status_code == 404


def test_openapi_documents_the_upload_fields(api_server) -> None:
    spec = httpx.get(f"{api_server.url}/openapi.json").json()
    score = spec["paths"]["/v1/score"]["post"]
    props = score["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"files", "mode", "samples", "explain", "store"} <= set(props)
    assert {"413", "415", "422", "503"} <= set(score["responses"])


def test_a_failed_load_keeps_the_old_model_serving(api_server) -> None:
    from sqlalchemy.orm import Session

    from app.db import make_engine
    from app.registry import service as registry

    broken = api_server.data_dir / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    engine = make_engine(f"sqlite:///{api_server.data_dir / 'evoq.sqlite3'}")
    with Session(engine) as db:
        old = registry.get_active(db=db).id
        bad = registry.create(
            db=db, base_model="broken", checkpoint_path=str(broken), digest="sha256:0"
        ).id
        db.commit()
    engine.dispose()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    activated = httpx.post(f"{api_server.url}/v1/admin/models/{bad}/activate", headers=headers)
    assert activated.status_code == 200, activated.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = httpx.get(f"{api_server.url}/readyz")
        error = ready.json().get("model", {}).get("last_error")
        if error:
            break
        time.sleep(0.2)
    assert error and error["version"] == bad
    assert ready.status_code == 200 and ready.json()["model"]["version"] == old
    scored = httpx.post(f"{api_server.url}/v1/score", files=_files(("z.png", image_bytes())))
    assert scored.json()["results"][0]["model_version"] == old
    assert "model load failed" in api_server.log.read_text()
    # put the working version back for the tests that follow
    httpx.post(f"{api_server.url}/v1/admin/models/{old}/activate", headers=headers)
