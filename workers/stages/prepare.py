"""Stage 1: sample the round's pairs from the trainable corpus and split them into chunks."""

from __future__ import annotations

from sqlalchemy import func, select

from app.corpus import service as corpus
from app.db import session_scope
from app.quality.augment import augmented_pairs, reference_of
from app.quality.pairs import max_pairs, sample_pairs
from app.quality.voting import chunk_count
from app.rounds.models import Pair, Round
from app.rounds.schemas import RoundConfigIn
from app.timeutil import utcnow
from workers.stages import NextTasks
from workers.state import load_round, rounds_advance, variant_spec


def prepare(round_id: int) -> NextTasks:
    """Sample the round's pairs from the trainable corpus, then fan out the voting chunks."""
    loaded = load_round(round_id, "pending")
    if loaded is None:
        return []
    config, _parent = loaded
    with session_scope() as db:
        if not db.scalar(select(func.count()).where(Pair.round_id == round_id)):
            shas = [image.sha256 for image in corpus.get_trainable(db=db)]
            sampled = _sample(shas, config)
            db.add_all(
                Pair(
                    round_id=round_id,
                    idx=i,
                    chunk=i // config.chunk_size,
                    image_a=reference_of(p.a),
                    image_b=reference_of(p.b),
                    variant_a=variant_spec(p.a),
                    variant_b=variant_spec(p.b),
                    holdout=p.holdout,
                )
                for i, p in enumerate(sampled)
            )
        total = db.scalar(select(func.count()).where(Pair.round_id == round_id)) or 0
        chunks = chunk_count(total, config.chunk_size)
        found = db.get(Round, round_id)
        found.started_at = found.started_at or utcnow()
        found.progress = {
            "pairs_total": total,
            "pairs_voted": 0,
            "chunks_total": chunks,
            "voting_started_at": utcnow().isoformat(),
        }
    if not rounds_advance(round_id, "pending", "voting"):
        return []
    if config.refresh_steps:
        return [("evoq.rounds.refresh", [round_id])]
    return [("evoq.rounds.vote_chunk", [round_id, chunk]) for chunk in range(chunks)]


def _sample(shas: list[str], config: RoundConfigIn) -> list:
    """The round's pairs: random pairs of stored images, or of images and their variants."""
    augment = config.augment_config()
    if not augment.enabled:
        n_pairs = min(config.pairs, max_pairs(len(shas)))
        return sample_pairs(shas, n_pairs, config.holdout_fraction, config.seed)
    n_pairs = min(config.pairs, max_pairs(len(shas) * (1 + augment.variants)) // 2)
    return augmented_pairs(shas, n_pairs, augment, config.holdout_fraction, config.seed)
