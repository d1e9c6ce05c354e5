"""Offline stage: K compare queries per pair, majority vote to p*, in resumable seeded chunks.

A round's pairs are split into fixed chunks by index; chunk c is voted with a seed derived from
(round seed, c), so a caller (a Celery task that writes rows) can vote only the chunks that are
missing and get the same result as an uninterrupted run.

Modes:
- "sampled" (paper): K sampled answers with random order swaps; votes_a/votes_b are the counts
  for each image, unparsable answers count as `invalid`.
- "logits" [ours]: the exact probability p that image a is better, from the answer-token
  logits of both orders (the K -> infinity limit of the vote). It is reported as K expected
  votes: votes_a = round(K * p), votes_b = K - votes_a, invalid = 0, and the label is taken from
  p itself (hard: 1 if p > 0.5, 0.5 if p == 0.5, else 0; soft: p).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from app.quality.pairs import Pair

__all__ = [
    "VoteConfig",
    "VoteResult",
    "chunk_count",
    "chunk_pairs",
    "chunk_seed",
    "iter_chunks",
    "label_from_probability",
    "p_star_from_votes",
    "vote_all",
    "vote_chunk",
]

Label = Literal["hard", "soft"]


@dataclass
class VoteConfig:
    """How pairs are voted; defaults are the paper's (K=32 sampled votes, hard majority label)."""

    k: int = field(default=32, metadata={"help": "Compare queries per pair (paper: 32)."})
    mode: Literal["sampled", "logits"] = field(
        default="sampled",
        metadata={"help": "'sampled': K votes with order swaps (paper); 'logits': exact p."},
    )
    label: Label = field(
        default="hard",
        metadata={"help": "'hard': majority -> 1 / 0.5 / 0 (paper); 'soft': vote fraction."},
    )
    min_confidence: float | None = field(
        default=None,
        metadata={
            "help": "Drop pairs whose majority share is below this (e.g. 0.7); off by default."
        },
    )
    chunk_size: int = field(
        default=64, metadata={"help": "Pairs per chunk: the unit of batching and of resuming."}
    )
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of votes."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of votes (1 = off)."})
    top_k: int = field(default=0, metadata={"help": "Top-k sampling of votes (0 = off)."})
    reasoning: bool | None = field(
        default=None,
        metadata={"help": "Ask for <think> reasoning before the answer; None = model default."},
    )

    def __post_init__(self) -> None:
        if self.k < 1 or self.chunk_size < 1:
            raise ValueError("k and chunk_size must be >= 1")
        if self.min_confidence is not None and not 0.5 <= self.min_confidence <= 1.0:
            raise ValueError("min_confidence must be in [0.5, 1]")


@dataclass(frozen=True)
class VoteResult:
    """Votes on one pair. `p_star` = P(a better than b), or None when the pair yields no label
    (no valid vote, or majority below `min_confidence`)."""

    a: Hashable
    b: Hashable
    votes_a: int
    votes_b: int
    invalid: int
    p_star: float | None
    holdout: bool = False
    p_first: float | None = None  # the model's probability for a (logits) or vote share (sampled)


def _passes(share: float, min_confidence: float | None) -> bool:
    return min_confidence is None or max(share, 1.0 - share) >= min_confidence


def label_from_probability(
    p: float, label: Label = "hard", min_confidence: float | None = None
) -> float | None:
    """p* from a preference probability: hard (1 / 0.5 / 0 on p vs 0.5) or soft (p itself)."""
    if not _passes(p, min_confidence):
        return None
    if label == "soft":
        return float(p)
    return 1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0


def p_star_from_votes(
    votes_a: int, votes_b: int, label: Label = "hard", min_confidence: float | None = None
) -> float | None:
    """The paper's majority rule (1 if a wins, 0.5 on a tie, 0 otherwise) or the soft vote share.

    None when there is no valid vote or the majority share is below `min_confidence`.
    """
    valid = votes_a + votes_b
    if valid == 0:
        return None
    return label_from_probability(votes_a / valid, label, min_confidence)


def chunk_count(n_pairs: int, chunk_size: int) -> int:
    """Number of chunks a round of `n_pairs` is split into."""
    return -(-n_pairs // chunk_size)


def chunk_pairs(pairs: Sequence[Pair], chunk_size: int, index: int) -> Sequence[Pair]:
    """Chunk `index` of a round's pairs (fixed by position, so resuming sees the same chunks)."""
    return pairs[index * chunk_size : (index + 1) * chunk_size]


def chunk_seed(round_seed: int, index: int) -> int:
    """A well-mixed 32-bit seed for chunk `index` of a round."""
    return int(np.random.SeedSequence([round_seed, index]).generate_state(1)[0])


def vote_chunk(
    model: Any,
    pairs: Sequence[Pair],
    load_image: Callable[[Hashable], Any],
    config: VoteConfig,
    seed: int,
) -> list[VoteResult]:
    """Vote one chunk of pairs with a `QualityModel` (one batched `compare` call)."""
    if not pairs:
        return []
    images = {key: load_image(key) for key in dict.fromkeys(k for p in pairs for k in (p.a, p.b))}
    compared = model.compare(
        [(images[p.a], images[p.b]) for p in pairs],
        mode=config.mode,
        k=config.k,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        reasoning=config.reasoning,
        seed=seed,
    )
    return [_result(p, c, config) for p, c in zip(pairs, compared, strict=True)]


def _result(pair: Pair, compared: Any, config: VoteConfig) -> VoteResult:
    if config.mode == "logits":
        p = float(compared.p_first)
        votes_a = round(config.k * p)
        return VoteResult(
            pair.a,
            pair.b,
            votes_a,
            config.k - votes_a,
            0,
            label_from_probability(p, config.label, config.min_confidence),
            pair.holdout,
            p,
        )
    valid = compared.votes_a + compared.votes_b
    return VoteResult(
        pair.a,
        pair.b,
        int(compared.votes_a),
        int(compared.votes_b),
        int(compared.invalid),
        p_star_from_votes(compared.votes_a, compared.votes_b, config.label, config.min_confidence),
        pair.holdout,
        compared.votes_a / valid if valid else None,
    )


def iter_chunks(
    model: Any,
    pairs: Sequence[Pair],
    load_image: Callable[[Hashable], Any],
    config: VoteConfig,
    round_seed: int,
    done: Mapping[int, Sequence[VoteResult]] | None = None,
) -> Iterator[tuple[int, list[VoteResult]]]:
    """Yield (chunk index, results) for every chunk not already in `done`, in index order."""
    done = done or {}
    for index in range(chunk_count(len(pairs), config.chunk_size)):
        if index in done:
            continue
        chunk = chunk_pairs(pairs, config.chunk_size, index)
        yield index, vote_chunk(model, chunk, load_image, config, chunk_seed(round_seed, index))


def vote_all(
    model: Any,
    pairs: Sequence[Pair],
    load_image: Callable[[Hashable], Any],
    config: VoteConfig,
    round_seed: int,
    done: Mapping[int, Sequence[VoteResult]] | None = None,
    on_chunk: Callable[[int, list[VoteResult]], None] | None = None,
) -> list[VoteResult]:
    """Vote every pair, reusing chunks in `done`; `on_chunk` sees each newly voted chunk."""
    results = {index: list(rows) for index, rows in (done or {}).items()}
    for index, rows in iter_chunks(model, pairs, load_image, config, round_seed, done):
        results[index] = rows
        if on_chunk is not None:
            on_chunk(index, rows)
    return [row for index in sorted(results) for row in results[index]]
