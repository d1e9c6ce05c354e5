"""Stage 5: register the candidate (with its score map) and promote it, park it for approval, or reject it."""

from __future__ import annotations

from app.calibration import rounds as calibration
from app.db import session_scope
from app.registry import service as registry
from app.rounds import gate as gate_rules
from app.rounds import service as rounds
from app.rounds.models import AWAITING_APPROVAL, Round
from workers.stages import NextTasks
from workers.state import load_round


def gate(round_id: int) -> NextTasks:
    """Register the candidate and promote it, park it for approval, or reject it."""
    loaded = load_round(round_id, "evaluating")
    if loaded is None:
        return []
    config, _parent = loaded
    with session_scope() as db:
        found = db.get(Round, round_id)
        metrics = found.gate.get("metrics", {})
        passed, checks = gate_rules.decide(metrics, config)
        if not passed:
            decision, status, version_status = "rejected", "rejected", "rejected"
        elif config.policy == "auto":
            decision, status, version_status = "promoted", "promoted", "candidate"
        else:
            decision, status, version_status = "awaiting approval", AWAITING_APPROVAL, "candidate"
        parent = registry.get_or_raise(db=db, version_id=found.parent_version_id)
        version = registry.create(
            db=db,
            base_model=parent.base_model,
            checkpoint_path=found.progress["checkpoint"],
            digest=found.progress["digest"],
            parent_id=parent.id,
            round_id=round_id,
            metrics={"train": found.progress.get("train", {}), **metrics},
            status=version_status,
            note=f"round {round_id}",
        )
        found.candidate_version_id = version.id
        calibration.store_fitted(
            db=db, version_id=version.id, record=found.progress.get("calibration", {})
        )
        found.gate = {**found.gate, **gate_rules.as_json(passed, checks, config.policy, decision)}
        if decision == "promoted":
            registry.activate(
                db=db, version_id=version.id, actor=f"round-{round_id}", reason="gate passed"
            )
        rounds.finish(db=db, round_id=round_id, status=status)
    return []
