"""Model registry: versions, activations (append-only), rollback, the base model's first entry."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import EvoqError
from app.registry.models import Activation, ModelVersion

log = logging.getLogger("evoq.registry")


class VersionNotFound(EvoqError):
    """No model version with that id."""

    def __init__(self, version_id: int) -> None:
        super().__init__("version_not_found", f"model version {version_id} does not exist", 404)


def get(*, db: Session, version_id: int) -> ModelVersion | None:
    """The version with this id, or None."""
    return db.get(ModelVersion, version_id)


def get_or_raise(*, db: Session, version_id: int) -> ModelVersion:
    """The version with this id, or a 404 error."""
    version = get(db=db, version_id=version_id)
    if version is None:
        raise VersionNotFound(version_id)
    return version


def get_all(*, db: Session) -> list[ModelVersion]:
    """Every version, oldest first."""
    return list(db.scalars(select(ModelVersion).order_by(ModelVersion.id)))


def latest_activation(*, db: Session) -> Activation | None:
    """The newest activation row: it names the active version."""
    return db.scalars(select(Activation).order_by(Activation.id.desc()).limit(1)).first()


def get_active(*, db: Session) -> ModelVersion | None:
    """The active version, or None before the first activation."""
    activation = latest_activation(db=db)
    return db.get(ModelVersion, activation.version_id) if activation else None


def history(*, db: Session, limit: int = 100) -> list[Activation]:
    """Activations, newest first."""
    stmt = select(Activation).order_by(Activation.id.desc()).limit(limit)
    return list(db.scalars(stmt))


def create(
    *,
    db: Session,
    base_model: str,
    checkpoint_path: str,
    digest: str,
    parent_id: int | None = None,
    round_id: int | None = None,
    metrics: dict[str, Any] | None = None,
    status: str = "candidate",
    note: str | None = None,
) -> ModelVersion:
    """Register a checkpoint as a new version (a candidate unless said otherwise)."""
    version = ModelVersion(
        base_model=base_model,
        checkpoint_path=checkpoint_path,
        digest=digest,
        parent_id=parent_id,
        round_id=round_id,
        metrics=metrics or {},
        status=status,
        note=note,
    )
    db.add(version)
    db.flush()
    return version


def set_status(*, db: Session, version_id: int, status: str) -> ModelVersion:
    """Change a version's status, the only mutable field of a version."""
    version = get_or_raise(db=db, version_id=version_id)
    version.status = status
    return version


def activate(
    *, db: Session, version_id: int, actor: str, reason: str = "", kind: str = "activate"
) -> Activation:
    """Make `version_id` the serving version; the previous one becomes retired. `kind` records
    whether this undoes the newest standing activation (rollback) or chooses a version."""
    version = get_or_raise(db=db, version_id=version_id)
    if not Path(version.checkpoint_path).exists() and not _looks_like_hub_id(
        version.checkpoint_path
    ):
        raise EvoqError(
            "checkpoint_missing",
            f"version {version_id}'s checkpoint {version.checkpoint_path} is not on disk",
            409,
        )
    current = latest_activation(db=db)
    previous_id = current.version_id if current else None
    if previous_id is not None and previous_id != version_id:
        set_status(db=db, version_id=previous_id, status="retired")
    version.status = "active"
    activation = Activation(
        version_id=version_id,
        previous_version_id=previous_id,
        kind=kind,
        actor=actor,
        reason=reason,
    )
    db.add(activation)
    db.flush()
    log.info(
        "version activated",
        extra={
            "version": version_id,
            "previous": previous_id,
            "kind": kind,
            "actor": actor,
            "reason": reason,
        },
    )
    return activation


def standing(activations: list[Activation]) -> list[int]:
    """The versions still standing in the activation history, oldest first, the active one last:
    each activation pushes its version (unless already on top), each rollback pops one."""
    stack: list[int] = []
    for activation in activations:
        if activation.kind == "rollback":
            if stack:
                stack.pop()
            # The rollback activated the version below; keep the stack honest if it was not.
            if not stack or stack[-1] != activation.version_id:
                stack.append(activation.version_id)
        elif not stack or stack[-1] != activation.version_id:
            stack.append(activation.version_id)
    return stack


def rollback(*, db: Session, actor: str, reason: str = "rollback") -> Activation:
    """Re-activate the version that served before the current one, walking back the history:
    versions already rolled back are skipped (v3, v4, rollback: v3; rollback again: v2), and
    rolling back past the first version answers 409."""
    stack = standing(list(db.scalars(select(Activation).order_by(Activation.id))))
    if len(stack) < 2:
        raise EvoqError(
            "nothing_to_roll_back",
            "no earlier version stands in the activation history"
            + (f" (version {stack[-1]} is the first)" if stack else ""),
            409,
        )
    return activate(db=db, version_id=stack[-2], actor=actor, reason=reason, kind="rollback")


def lineage(*, db: Session, version_id: int) -> list[int]:
    """Ids from this version back to the root, this version first."""
    chain: list[int] = []
    version = get(db=db, version_id=version_id)
    while version is not None and version.id not in chain:
        chain.append(version.id)
        version = get(db=db, version_id=version.parent_id) if version.parent_id else None
    return chain


def ensure_base_version(
    *, db: Session, base_model: str, checkpoint_path: str, digest: str, metrics: dict | None = None
) -> ModelVersion:
    """On first start, register the base model as the first version and activate it."""
    active = get_active(db=db)
    if active is not None:
        return active
    version = create(
        db=db,
        base_model=base_model,
        checkpoint_path=checkpoint_path,
        digest=digest,
        metrics=metrics,
        note="base model",
    )
    activate(db=db, version_id=version.id, actor="system", reason="initial base model")
    return version


def _looks_like_hub_id(path: str) -> bool:
    return "/" in path and not path.startswith(("/", ".")) and path.count("/") == 1
