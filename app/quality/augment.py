"""Round-2 pool of the paper: distorted variants of the pool images, derived per round.

Each reference image gets `variants` distorted versions (distinct types, one random level
1..5 each). A round then votes on random pairs over references and variants plus pairs of two
versions of the same reference, where votes are most reliable. Variants are never stored: a
`Variant` key names the reference and the distortion, and `variant_loader` rebuilds its pixels
deterministically from the round seed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from app.quality import distortions
from app.quality.pairs import Pair, flag_holdout, max_pairs, sample_pairs

__all__ = [
    "AugmentConfig",
    "Variant",
    "augmented_pairs",
    "parse_variant",
    "reference_of",
    "variant_loader",
    "variants_for",
]


@dataclass
class AugmentConfig:
    """Synthetic variants for a round (paper round 2: 10 types, 5 levels); 0 variants = off."""

    variants: int = field(default=0, metadata={"help": "Distorted versions per image (paper: 10)."})
    types: tuple[str, ...] = field(
        default=tuple(distortions.DISTORTIONS),
        metadata={"help": f"Distortion types drawn from: {', '.join(distortions.DISTORTIONS)}."},
    )
    same_reference_fraction: float = field(
        default=0.5,
        metadata={"help": "Share of pairs that are two versions of the same reference image."},
    )
    random_pairs_from: str = field(
        default="augmented",
        metadata={
            "help": "The other pairs: 'augmented' draws them over references and variants, "
            "'references' over the stored images only, so variants enter only beside their "
            "own reference and the round's image distribution stays the corpus's."
        },
    )

    def __post_init__(self) -> None:
        unknown = set(self.types) - set(distortions.DISTORTIONS)
        if unknown:
            raise ValueError(f"unknown distortion types: {sorted(unknown)}")
        if self.variants < 0 or (self.variants and not self.types):
            raise ValueError("variants must be >= 0 and need at least one type")
        if not 0.0 <= self.same_reference_fraction <= 1.0:
            raise ValueError("same_reference_fraction must be in [0, 1]")
        if self.random_pairs_from not in ("augmented", "references"):
            raise ValueError("random_pairs_from must be 'augmented' or 'references'")

    @property
    def enabled(self) -> bool:
        return self.variants > 0


@dataclass(frozen=True)
class Variant:
    """Reference image `ref` distorted by `kind` at `level` (1 mildest .. 5 worst)."""

    ref: Hashable
    kind: str
    level: int

    @property
    def spec(self) -> str:
        """How the distortion is written beside the reference: 'kind-level'."""
        return f"{self.kind}-{self.level}"

    def __str__(self) -> str:
        return f"{self.ref}~{self.spec}"


def parse_variant(ref: Hashable, spec: str | None) -> Hashable:
    """The key for `ref` with an optional 'kind-level' spec (as stored), else `ref` itself."""
    if not spec:
        return ref
    kind, _, level = spec.rpartition("-")
    return Variant(ref, kind, int(level))


def reference_of(key: Hashable) -> Hashable:
    """The stored image a key stands for: the reference of a variant, or the key itself."""
    return key.ref if isinstance(key, Variant) else key


def seed_label(ref: Hashable) -> str:
    """The part of a reference key that seeds its variants: a file path's name, so a pool draws
    the same variants wherever its folder lies (the demo's runs in temporary folders drew
    different ones); any other key, e.g. a stored image's sha256, as it is."""
    text = str(ref)
    return os.path.basename(text) if os.sep in text else text


def variants_for(ref: Hashable, config: AugmentConfig, seed: int) -> list[Variant]:
    """The variants of one reference: distinct types while there are enough, random levels."""
    rng = random.Random(f"{seed}:{seed_label(ref)}")
    types = list(config.types)
    chosen: list[str] = []
    while len(chosen) < config.variants:
        chosen.extend(rng.sample(types, min(len(types), config.variants - len(chosen))))
    return [Variant(ref, kind, rng.randint(1, distortions.LEVELS)) for kind in chosen]


def augmented_pairs(
    ids: Sequence[Hashable],
    n_pairs: int,
    config: AugmentConfig,
    holdout_fraction: float = 0.0,
    seed: int = 0,
) -> list[Pair]:
    """n_pairs distinct pairs: a share of same-reference pairs, the rest random over the pool of
    references and variants; seeded, random order within a pair, holdout flagged as usual."""
    pool: list[Hashable] = list(ids)
    family = {ref: [ref, *dict.fromkeys(variants_for(ref, config, seed))] for ref in ids}
    if config.random_pairs_from == "augmented":
        for members in family.values():
            pool.extend(members[1:])
    rng = random.Random(seed)
    n_same = min(round(n_pairs * config.same_reference_fraction), _same_capacity(family))
    seen: set[frozenset] = set()
    pairs: list[tuple[Any, Any]] = []
    refs = list(ids)
    while len(pairs) < n_same:
        members = family[refs[rng.randrange(len(refs))]]
        if len(members) < 2:
            continue
        a, b = rng.sample(members, 2)
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            pairs.append((a, b))
    n_random = n_pairs - len(pairs)
    if n_random > max_pairs(len(pool)) - len(pairs):
        raise ValueError(f"{n_pairs} pairs requested but the augmented pool allows fewer")
    draw, extra = seed, n_random
    while extra > 0:  # redraw (rarely) when random pairs hit same-reference ones already taken
        for p in sample_pairs(pool, min(max_pairs(len(pool)), n_random + len(seen)), 0.0, draw):
            if extra and frozenset((p.a, p.b)) not in seen:
                seen.add(frozenset((p.a, p.b)))
                pairs.append((p.a, p.b))
                extra -= 1
        draw += 1
    rng.shuffle(pairs)
    return flag_holdout(pairs, holdout_fraction, seed)


def _same_capacity(family: dict[Hashable, list[Hashable]]) -> int:
    return sum(max_pairs(len(members)) for members in family.values())


def variant_loader(
    load: Callable[[Hashable], Image.Image], seed: int
) -> Callable[[Hashable], Image.Image]:
    """Wrap an image loader so Variant keys load their reference and apply the distortion."""

    def load_key(key: Hashable) -> Image.Image:
        if not isinstance(key, Variant):
            return load(key)
        strength = distortions.DISTORTIONS[key.kind][key.level - 1]
        rng = distortions.rng_for(seed, seed_label(key.ref), key.kind, key.level)
        return distortions.apply(load(key.ref), key.kind, strength, rng)

    return load_key
