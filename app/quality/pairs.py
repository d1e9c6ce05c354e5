"""Random image pairs for a round: no self-pairs, no duplicates, a holdout share for gating."""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Pair", "flag_holdout", "max_pairs", "sample_pairs"]

Id = TypeVar("Id", bound=Hashable)


@dataclass(frozen=True)
class Pair(Generic[Id]):
    """Two distinct images; `holdout` pairs are voted but kept out of training."""

    a: Id
    b: Id
    holdout: bool = False


def max_pairs(n_images: int) -> int:
    """How many distinct unordered pairs `n_images` images allow."""
    return n_images * (n_images - 1) // 2


def sample_pairs(
    ids: Sequence[Id], n_pairs: int, holdout_fraction: float = 0.0, seed: int = 0
) -> list[Pair[Id]]:
    """Sample `n_pairs` distinct unordered pairs uniformly; the order within a pair is random.

    `round(n_pairs * holdout_fraction)` of them (at least one when the fraction is > 0 and
    there are two or more pairs) are flagged holdout. Same ids, n and seed give the same list.
    """
    unique = list(dict.fromkeys(ids))
    if len(unique) != len(ids):
        raise ValueError("ids must be unique")
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError("holdout_fraction must be in [0, 1)")
    limit = max_pairs(len(unique))
    if n_pairs > limit:
        raise ValueError(f"{n_pairs} pairs requested but {len(unique)} images allow {limit}")
    rng = random.Random(seed)
    # Sample pair indices in the triangular enumeration without materialising all pairs,
    # so a pool of 100k images (5e9 pairs) costs only n_pairs draws.
    chosen = rng.sample(range(limit), n_pairs)
    pairs = []
    for index in chosen:
        i, j = _unrank(index)
        a, b = (unique[i], unique[j]) if rng.random() < 0.5 else (unique[j], unique[i])
        pairs.append((a, b))
    return flag_holdout(pairs, holdout_fraction, seed)


def _holdout_count(n_pairs: int, fraction: float) -> int:
    if fraction <= 0 or n_pairs < 2:
        return 0
    return min(n_pairs - 1, max(1, round(n_pairs * fraction)))


def _unrank(index: int) -> tuple[int, int]:
    """Map 0.. C(n,2)-1 to (i, j) with i < j, row-major over j: (0,1), (0,2), (1,2), (0,3), ..."""
    j = (1 + math.isqrt(1 + 8 * index)) // 2
    i = index - j * (j - 1) // 2
    return i, j


def flag_holdout(
    pairs: Sequence[tuple[Id, Id]], holdout_fraction: float, seed: int
) -> list[Pair[Id]]:
    """Pairs with a seeded `holdout_fraction` share flagged holdout (the rule of sample_pairs)."""
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError("holdout_fraction must be in [0, 1)")
    n_holdout = _holdout_count(len(pairs), holdout_fraction)
    holdout = set(random.Random(seed).sample(range(len(pairs)), n_holdout))
    return [Pair(a, b, k in holdout) for k, (a, b) in enumerate(pairs)]
