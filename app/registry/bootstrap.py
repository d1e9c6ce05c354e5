"""First start: build or locate the base model and register it as the first, active version."""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path

from app.db import session_scope
from app.quality.builtins import resolve_model_source
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
        digest = weights_digest(folder) if folder.is_dir() else f"hub:{source}"
        with session_scope() as db:
            version = service.ensure_base_version(
                db=db,
                base_model=settings.base_model,
                checkpoint_path=str(folder.resolve()) if folder.is_dir() else source,
                digest=digest,
                metrics=_lineage_metrics(folder),
            )
            log.info("base model registered", extra={"version": version.id, "source": source})
            return version.id


def _lineage_metrics(folder: Path) -> dict:
    """Metrics shipped with a built-in model (e.g. the evolved demo's rounds), if any."""
    import json

    lineage = folder / "lineage.json"
    if folder.is_dir() and lineage.is_file():
        return {"lineage": json.loads(lineage.read_text())}
    return {}
