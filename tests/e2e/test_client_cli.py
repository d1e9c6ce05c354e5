"""The Python client, `evoq score` and `evoq upload` against a real server whose upload limit is
4 files per request (so folders must be split), tiny model, no worker."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.client import ApiError, AsyncClient, Client
from app.corpus.schemas import UploadResponse
from app.registry.schemas import ModelsOut
from app.rounds.schemas import RoundOut
from app.scoring.schemas import ScoreResponse
from tests.badinputs import image_bytes, zip_bytes
from tests.e2e.conftest import ADMIN_TOKEN, Server, running_server

pytestmark = pytest.mark.e2e
FILES_PER_REQUEST = 4
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("client"),
        EVOQ_ADMIN_TOKEN=ADMIN_TOKEN,
        EVOQ_MAX_FILES_PER_REQUEST=str(FILES_PER_REQUEST),
    ) as running:
        yield running


def _folder(root: Path, n: int, seed: int, broken: bool = True) -> Path:
    """n PNGs in root and root/sub, and (optionally) a .png holding text."""
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        where = root if i % 2 else root / "sub"
        (where / f"img{i}.png").write_bytes(image_bytes("PNG", (40, 40), seed=seed + i))
    if broken:
        (root / "sub" / "broken.png").write_bytes(b"plain text, not an image")
    return root


def test_client_scores_compares_and_raises_the_api_error(server, tmp_path) -> None:
    a, b = image_bytes("PNG", (40, 40), seed=1), image_bytes("PNG", (40, 40), seed=2)
    (tmp_path / "a.png").write_bytes(a)
    with Client(server.url) as api:
        scored = api.score([tmp_path / "a.png", ("b.png", b)], mode="sampled", samples=2)
        assert isinstance(scored, ScoreResponse)
        assert [r.filename for r in scored.results] == ["a.png", "b.png"]
        assert scored.results[1].sha256 == hashlib.sha256(b).hexdigest()
        assert scored.results[0].n == 2
        active = api.models.list()
        assert isinstance(active, ModelsOut)
        assert {r.model_version for r in scored.results} == {active.active_version}
        assert 0.0 <= api.compare(a, ("b.png", b)).p_first_better <= 1.0
        with pytest.raises(ApiError) as bad:
            api.score([("a.png", a), ("broken.png", b"text")])
        assert (bad.value.code, bad.value.status) == ("not_an_image", 415)
        assert bad.value.body["filename"] == "broken.png" and bad.value.detail
        with pytest.raises(ApiError) as unauthorized:
            api.rounds.list()
        assert (unauthorized.value.code, unauthorized.value.status) == ("unauthorized", 401)
    with Client(server.url, token="wrong") as api, pytest.raises(ApiError) as forbidden:
        api.models.rollback()
    assert forbidden.value.code == "forbidden"
    with Client(server.url) as api:
        assert api.whoami()["role"] == "anonymous"
    with Client("http://127.0.0.1:9") as api, pytest.raises(ApiError) as down:
        api.models.list()
    assert down.value.code == "unreachable"


def test_client_upload_splits_a_folder_under_the_servers_limits(server, tmp_path) -> None:
    folder = _folder(tmp_path / "photos", 9, seed=100)
    zipped = {f"z{i}.png": image_bytes("PNG", (40, 40), seed=200 + i) for i in range(3)}
    (folder / "more.zip").write_bytes(zip_bytes(zipped))
    batches: list[int] = []
    with Client(server.url) as api:
        assert api.limits().max_files_per_request == FILES_PER_REQUEST
        before = api.corpus().images
        result = api.upload([folder], on_batch=lambda n, _r: batches.append(n))
        assert isinstance(result, UploadResponse)
        # 9 images + the broken file + a zip of 3 (counted as 3) = 13 images, 4 per request
        assert len(batches) >= 4 and sum(batches) == 11
        assert (result.stored, result.duplicates, result.rejected) == (12, 0, 1)
        assert [r.filename for r in result.results if r.status == "rejected"] == ["sub/broken.png"]
        assert api.corpus().images == before + 12
        again = api.upload([folder / "img1.png"])
        assert again.duplicates == 1 and again.results[0].duplicate_of


def test_client_rounds_start_cancel_wait_and_registry(server, tmp_path) -> None:
    with Client(server.url, token=ADMIN_TOKEN) as api:
        if api.corpus().images < 4:
            api.upload([_folder(tmp_path / "pool", 6, seed=300, broken=False)])
        assert api.whoami() == {
            "role": "admin",
            "can": {"score": True, "upload": True, "delete": True, "admin": True},
        }
        estimate = api.rounds.estimate({"pairs": 4, "votes": 2, "max_steps": 1})
        assert estimate.seconds > 0 and estimate.warning is None and estimate.device
        started = api.rounds.start({"pairs": 4, "votes": 2, "max_steps": 1})
        assert isinstance(started, RoundOut) and started.status == "pending"
        assert started.estimate.seconds == pytest.approx(estimate.seconds)
        assert started.config["pairs"] == 4 and started.config["votes"] == 2
        assert api.rounds.get(started.id).id == started.id
        assert started.id in [r.id for r in api.rounds.list().items]
        api.rounds.cancel(started.id)  # no worker in this server: it would stay pending
        assert api.rounds.wait(started.id, timeout=30, poll=0.2).status == "cancelled"
        with pytest.raises(ApiError) as invalid:
            api.rounds.start({"pairs": 1})
        assert invalid.value.status == 422 and "pairs" in invalid.value.detail
        active = api.models.list().active_version
        assert api.models.activate(active, reason="client test").version_id == active
        with pytest.raises(ApiError) as nothing:  # re-activating adds nothing to walk back
            api.models.rollback()
        assert (nothing.value.status, nothing.value.code) == (409, "nothing_to_roll_back")
        with pytest.raises(ApiError) as unknown:
            api.models.activate(9999)
        assert unknown.value.status == 404 and "9999" in unknown.value.detail


def test_async_client(server) -> None:
    async def main() -> tuple[ScoreResponse, ModelsOut, object]:
        async with AsyncClient(server.url, token=ADMIN_TOKEN) as api:
            scored = await api.score(("x.png", image_bytes("PNG", (36, 36), seed=9)))
            models = await api.models.list()
            version = await api.models.get(models.active_version)
            await api.rounds.list()
            with pytest.raises(ApiError) as unknown:
                await api.rounds.get(9999)
            return scored, models, (version, unknown.value)

    scored, models, (version, unknown) = asyncio.run(main())
    assert scored.results[0].model_version == models.active_version == version.id
    assert version.active and unknown.status == 404


def test_evoq_score_through_the_server_skips_unreadable_files(server, tmp_path) -> None:
    folder = _folder(tmp_path / "imgs", 5, seed=400)
    out = tmp_path / "results.csv"
    args = ["score", str(folder), str(tmp_path / "nope.png"), "--server", server.url]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["filename", "sha256", "score", "std", "version"]
    assert sorted(Path(r["filename"]).name for r in rows) == [f"img{i}.png" for i in range(5)]
    version = httpx.get(f"{server.url}/v1/models").json()["active_version"]
    assert {r["version"] for r in rows} == {str(version)}
    for row in rows:
        assert row["sha256"] == hashlib.sha256(Path(row["filename"]).read_bytes()).hexdigest()
        assert 1.0 <= float(row["score"]) <= 5.0
    assert "broken.png: not_an_image" in result.output
    assert "nope.png: no such file or folder" in result.output


def test_evoq_score_with_a_local_model_writes_jsonl(tiny_model_dir, tmp_path) -> None:
    folder = _folder(tmp_path / "imgs", 3, seed=500)
    out = tmp_path / "results.jsonl"
    args = ["score", str(folder), "--model", str(tiny_model_dir), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and {r["version"] for r in rows} == {str(tiny_model_dir)}
    assert "broken.png: unreadable image" in result.output
    both = CliRunner().invoke(app, [*args[:2], "--server", "http://x", "--model", "y"])
    assert both.exit_code == 2 and "not both" in both.output


def test_evoq_upload_sends_a_folder_in_batches(server, tmp_path) -> None:
    folder = _folder(tmp_path / "up", 7, seed=600)
    before = httpx.get(f"{server.url}/v1/corpus").json()["images"]
    result = CliRunner().invoke(app, ["upload", str(folder), "--server", server.url])
    assert result.exit_code == 0, result.output
    assert "stored 7, duplicates 0, rejected 1" in result.output
    assert "rejected sub/broken.png: not_an_image" in result.output
    assert httpx.get(f"{server.url}/v1/corpus").json()["images"] == before + 7
    missing = CliRunner().invoke(app, ["upload", str(tmp_path / "absent"), "--server", server.url])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output


def test_console_stays_out_of_openapi_and_opt_out_patch_answers_errors(server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert not [path for path in spec["paths"] if path.startswith("/console")]
    assert "patch" in spec["paths"]["/v1/corpus/images/{sha256}"]
    page = httpx.get(f"{server.url}/console/rounds")
    assert page.status_code == 200 and 'data-field="pairs"' in page.text
    images = f"{server.url}/v1/corpus/images"
    missing = httpx.patch(f"{images}/{'0' * 64}", json={"train_opt_out": True}, headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"] == "image_not_found"
    # Its own image: the test passes alone and in any order.
    own = [("files", ("own.png", image_bytes("PNG", (40, 40), seed=700), "image/png"))]
    sha = httpx.post(images, files=own).json()["results"][0]["sha256"]
    bad = httpx.patch(f"{images}/{sha}", json={"train_opt_out": 1, "x": 2}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
    anonymous = httpx.patch(f"{images}/{sha}", json={"train_opt_out": True})
    assert anonymous.status_code == 401  # a token is configured: opt-out needs one
    ok = httpx.patch(f"{images}/{sha}", json={"train_opt_out": True}, headers=AUTH)
    assert ok.status_code == 200 and ok.json()["train_opt_out"] is True
