"""Stage 4b: put the candidate on the reference score scale before the gate."""

from __future__ import annotations

from app.calibration import rounds as calibration
from app.calibration.anchors import RawScorer, raw_serving_scores
from app.db import session_scope
from app.rounds.models import Round
from app.settings import get_settings
from workers.heartbeat import cancel_requested, heartbeat
from workers.model_cache import cached_model
from workers.stages import NextTasks
from workers.stages.evaluate import finite
from workers.state import load_round


def calibrate(round_id: int) -> NextTasks:
    """Fit the candidate's map onto the reference score scale on the anchor set, recording the
    raw scale drift from the parent and the residual after the map, for the gate."""
    loaded = load_round(round_id, "evaluating")
    if loaded is None:
        return []
    _config, parent_path = loaded
    with session_scope() as db:
        found = db.get(Round, round_id)
        candidate_path, parent_id = found.progress["checkpoint"], found.parent_version_id
    with heartbeat(round_id):
        record = calibration.calibrate_candidate(
            get_settings(),
            parent_id=parent_id,
            # Both in the serving mode: the reasoning prompt that GRPO trained, for a reasoning
            # model, so the map fits the scores the API will serve.
            parent=serving_scorer(parent_path),
            candidate=serving_scorer(candidate_path),
        )
    with session_scope() as db:
        found = db.get(Round, round_id, with_for_update=True)
        found.progress = {**found.progress, "calibration": record}
        metrics = {**found.gate.get("metrics", {}), **calibration.gate_metrics(record)}
        found.gate = {**found.gate, "metrics": finite(metrics)}
    if not cancel_requested(round_id):
        return [("evoq.rounds.gate", [round_id])]
    return []


def serving_scorer(checkpoint_path: str) -> RawScorer:
    """A checkpoint's raw serving scores, its model fetched from the cache at each call: with
    vLLM the cache keeps one engine, so loading the candidate closes the parent's."""

    def score(images: list) -> list[float]:
        return raw_serving_scores(cached_model(checkpoint_path))(images)

    return score
