"""A demonstration model says what it is: /v1/models flags it ("demo"), every console page shows
the notice while one is served, and serving logs the notice once. A demonstration model is one
the demo builders wrote, or one trained from it: the marker file those write and rounds copy."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from app.console.router import PAGES
from app.db import make_engine, migrate
from app.deps import get_db
from app.main import create_app
from app.model_sources import resolve_model_source
from app.quality.loading import copy_prompt_marker
from app.quality.marker import MARKER, is_demo_model
from app.registry import bootstrap, service
from app.scoring.demo_notice import DEMO_NOTICE, DemoAnnouncer
from app.settings import Settings

DEFAULT_MODEL = Settings.model_fields["base_model"].default


@pytest.fixture(scope="module")
def default_model(tmp_path_factory) -> Path:
    """The default embedded model (builtin:demo-evolved), as the server builds it."""
    return Path(resolve_model_source(DEFAULT_MODEL, tmp_path_factory.mktemp("models")))


@pytest.fixture()
def real_checkpoint(tiny_model_dir, tmp_path) -> Path:
    """A checkpoint folder no demo builder wrote: the tiny model's files without the marker."""
    folder = shutil.copytree(tiny_model_dir, tmp_path / "checkpoint")
    (folder / MARKER).unlink()
    return folder


@pytest.fixture()
def api(tmp_path) -> Iterator[tuple[TestClient, sessionmaker]]:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    migrate("head", url=url)
    engine = make_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)

    def session() -> Iterator[object]:
        with sessions() as db:
            yield db
            db.commit()

    app = create_app(Settings(data_dir=tmp_path / "data"), load_model=False)
    app.dependency_overrides[get_db] = session
    with TestClient(app) as client:
        yield client, sessions
    engine.dispose()


def test_the_demo_builders_models_and_their_descendants_are_demonstration_models(
    default_model, tiny_model_dir, real_checkpoint, tmp_path
) -> None:
    assert is_demo_model(default_model)
    assert is_demo_model(default_model / "lineage" / "round-0")  # builtin:demo, its parent
    assert is_demo_model(tiny_model_dir)  # evoq make-tiny-model, wherever it writes
    child = tmp_path / "round-1"
    child.mkdir()
    copy_prompt_marker(tiny_model_dir, child)  # what every round's checkpoint writer does
    assert is_demo_model(child)
    assert not is_demo_model(real_checkpoint)
    assert not is_demo_model("Qwen/Qwen2.5-VL-7B-Instruct")  # a hub id
    assert not is_demo_model(None)


def test_models_flag_the_default_model_and_not_a_real_checkpoint(
    api, default_model, real_checkpoint
) -> None:
    client, sessions = api
    with sessions() as db:
        served = bootstrap._register_lineage(db, DEFAULT_MODEL, default_model)
        real = service.create(
            db=db, base_model=str(real_checkpoint), checkpoint_path=str(real_checkpoint),
            digest="real", status="candidate",
        ).id  # fmt: skip
        db.commit()

    body = client.get("/v1/models").json()
    flags = {v["id"]: v["demo"] for v in body["versions"]}
    assert body["active_version"] == served and body["demo"] is True
    assert flags.pop(real) is False
    assert len(flags) == 3 and all(flags.values())  # builtin:demo -> round 1 -> round 2
    assert client.get(f"/v1/models/{real}").json()["demo"] is False

    with sessions() as db:
        service.activate(db=db, version_id=real, actor="t")
        db.commit()
    body = client.get("/v1/models").json()
    assert body["active_version"] == real and body["demo"] is False


def _serving(client: TestClient, folder: Path) -> None:
    loaded = SimpleNamespace(checkpoint_path=str(folder))
    client.app.state.model_slot = SimpleNamespace(current=loaded)


def test_every_console_page_shows_the_notice_while_a_demo_model_is_served(
    api, default_model, real_checkpoint
) -> None:
    client, _ = api
    pages = [f"/console/{slug}" for slug, _ in PAGES] + ["/console/rounds/1"]
    _serving(client, default_model)
    for page in pages:
        html = client.get(page).text
        assert 'id="demo-banner"' in html and DEMO_NOTICE in html, page
    _serving(client, real_checkpoint)
    for page in pages:
        assert 'id="demo-banner"' not in client.get(page).text, page
    client.app.state.model_slot = None  # nothing loaded yet: nothing to warn about
    assert 'id="demo-banner"' not in client.get(pages[0]).text


def test_serving_logs_the_notice_once(default_model, real_checkpoint, caplog) -> None:
    log = logging.getLogger("test.demo_notice")
    announcer = DemoAnnouncer(log)
    with caplog.at_level(logging.WARNING, logger=log.name):
        announcer.served(1, str(real_checkpoint))
        assert not caplog.records
        announcer.served(2, str(default_model))
        announcer.served(3, str(default_model / "lineage" / "round-1"))
    assert [r.getMessage() for r in caplog.records] == [DEMO_NOTICE]
    assert caplog.records[0].version == 2
