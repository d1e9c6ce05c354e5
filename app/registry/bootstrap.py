"""First start: build or locate the base model and register it as the first, active version."""

from __future__ import annotations

import fcntl
import json
import logging
from pathlib import Path

from sqlalchemy.orm import Session

from app.db import session_scope
from app.model_sources import resolve_model_source
from app.quality.checkpoint import weights_digest
from app.registry import service
from app.settings import Settings

log = logging.getLogger("evoq.registry")


def models_dir(settings: Settings) -> Path:
    """Where built-in models are built and round checkpoints are written."""
    return settings.data_dir.resolve() / "models"


def resolve_base_model(settings: Settings) -> str:
    """The base model as a loadable source: a folder (built-ins are built once) or a hub id."""
    return resolve_model_source(settings.base_model, models_dir(settings))


def ensure_base_registered(settings: Settings) -> int:
    """Register and activate the base model unless a version is already active; returns the
    active version id. A file lock keeps two processes starting together from both registering."""
    lock_path = settings.data_dir.resolve() / "bootstrap.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with session_scope() as db:
            active = service.get_active(db=db)
            if active is not None:
                return active.id
        source = resolve_base_model(settings)
        folder = Path(source)
        with session_scope() as db:
            if folder.is_dir() and (folder / "lineage.json").is_file():
                version_id = _register_lineage(db, settings.base_model, folder.resolve())
            else:
                version_id = service.ensure_base_version(
                    db=db,
                    base_model=settings.base_model,
                    checkpoint_path=str(folder.resolve()) if folder.is_dir() else source,
                    digest=weights_digest(folder) if folder.is_dir() else f"hub:{source}",
                ).id
            log.info("base model registered", extra={"version": version_id, "source": source})
            return version_id


def _register_lineage(db: Session, base_model: str, folder: Path) -> int:
    """A built-in model that evolved offline (builtin:demo-evolved) ships its checkpoints and
    lineage.json: register base → round 1 → … as a chain and activate the last."""
    lineage = json.loads((folder / "lineage.json").read_text())
    rows = lineage.get("table", [])
    parent_id: int | None = None
    for index, relative in enumerate(lineage["checkpoints"]):
        path = (folder / relative).resolve()
        version = service.create(
            db=db,
            base_model=base_model,
            checkpoint_path=str(path),
            digest=weights_digest(path),
            parent_id=parent_id,
            metrics={"offline_round": index, **(rows[index] if index < len(rows) else {})},
            status="retired",
            note=f"{lineage.get('base', base_model)} after {index} offline evolution round(s)",
        )
        parent_id = version.id
    assert parent_id is not None, "lineage.json lists no checkpoints"
    service.activate(db=db, version_id=parent_id, actor="system", reason="initial base model")
    return parent_id
