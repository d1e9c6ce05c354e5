"""Rollback walks back the activation history: rolled-back versions are skipped, and rolling
back past the first version answers 409."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, migrate
from app.errors import EvoqError
from app.registry import service


@pytest.fixture
def db(tmp_path) -> Session:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    migrate("head", url=url)
    engine = make_engine(url)
    with sessionmaker(bind=engine)() as session:
        yield session
    engine.dispose()


def _version(db: Session, tmp_path, name: str) -> int:
    folder = tmp_path / name
    folder.mkdir()
    return service.create(db=db, base_model="b", checkpoint_path=str(folder), digest=name).id


def test_rollback_walks_back_and_skips_rolled_back_versions(db, tmp_path) -> None:
    v1, v2, v3, v4, v5 = (_version(db, tmp_path, f"v{i}") for i in range(1, 6))
    for version in (v1, v2, v3, v4):
        service.activate(db=db, version_id=version, actor="t")

    first = service.rollback(db=db, actor="t")
    assert (first.version_id, first.previous_version_id, first.kind) == (v3, v4, "rollback")
    second = service.rollback(db=db, actor="t")  # not v4, the version just rolled back
    assert (second.version_id, second.previous_version_id) == (v2, v3)
    assert service.get_active(db=db).id == v2
    assert service.get(db=db, version_id=v4).status == "retired"

    # A new activation stands on v2; rolling it back skips v3 and v4 again.
    service.activate(db=db, version_id=v5, actor="t")
    assert service.rollback(db=db, actor="t").version_id == v2
    assert service.rollback(db=db, actor="t").version_id == v1
    with pytest.raises(EvoqError) as past_first:
        service.rollback(db=db, actor="t")
    assert past_first.value.status_code == 409
    assert past_first.value.code == "nothing_to_roll_back"
    assert f"version {v1} is the first" in past_first.value.detail
    assert service.get_active(db=db).id == v1


def test_reactivating_the_active_version_adds_no_step_to_walk_back(db, tmp_path) -> None:
    v1, v2 = (_version(db, tmp_path, f"v{i}") for i in range(1, 3))
    service.activate(db=db, version_id=v1, actor="t")
    service.activate(db=db, version_id=v2, actor="t")
    service.activate(db=db, version_id=v2, actor="t", reason="again")
    assert service.rollback(db=db, actor="t").version_id == v1
    with pytest.raises(EvoqError):
        service.rollback(db=db, actor="t")


def test_rollback_with_no_history_answers_409(db) -> None:
    with pytest.raises(EvoqError) as empty:
        service.rollback(db=db, actor="t")
    assert empty.value.status_code == 409
