"""The synthetic benchmark: counts, disjoint splits, distortions that move image statistics."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from app.demo.synthetic import (
    LEVELS,
    SPLITS,
    SyntheticConfig,
    distort,
    generate,
    load_split,
    write_synthetic,
)

SMALL = SyntheticConfig(seed=3, counts={"prior": 120, "pool": 60, "eval": 60})


@pytest.fixture(scope="module")
def data():
    return generate(SMALL)


def test_counts_sizes_and_labels(data):
    assert {s: len(v) for s, v in data.items()} == SMALL.counts
    for items in data.values():
        assert len({it.filename for it in items}) == len(items)
        for it in items:
            assert it.image.size == (SMALL.size, SMALL.size) and it.image.mode == "RGB"
            assert it.mos == LEVELS - it.level and 1 <= it.mos <= 5
            assert it.distortion in SMALL.distortions
        assert {it.level for it in items} == set(range(LEVELS))


def test_splits_share_no_source(data):
    sources = {s: {it.source for it in data[s]} for s in SPLITS}
    assert not sources["prior"] & sources["pool"]
    assert not sources["prior"] & sources["eval"]
    assert not sources["pool"] & sources["eval"]
    # Both kinds of content are present, and there are many distinct contents per split.
    for s in SPLITS:
        assert {src.split(":")[0] for src in sources[s]} == {"photo", "texture"}


def test_deterministic_given_seed(data):
    again = generate(SMALL)
    other = generate(SyntheticConfig(seed=4, counts=SMALL.counts))
    same = all(
        np.array_equal(np.asarray(a.image), np.asarray(b.image))
        for a, b in zip(data["eval"], again["eval"], strict=True)
    )
    assert same
    assert any(
        not np.array_equal(np.asarray(a.image), np.asarray(b.image))
        for a, b in zip(data["eval"], other["eval"], strict=True)
    )


def _edges(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=1)).mean())


@pytest.mark.parametrize(
    ("kind", "stat", "direction"),
    [
        ("darken", np.mean, -1),  # darker
        ("contrast", np.std, -1),  # flatter
        ("blur", _edges, -1),  # fewer edges
        ("noise", _edges, +1),  # more high-frequency energy
    ],
)
def test_levels_are_monotone(data, kind, stat, direction):
    # Apply every level to the same contents: the statistic must move one way with level.
    rng = np.random.default_rng(0)
    contents = [it.image for it in data["eval"][:20]]
    values = [
        np.mean([stat(np.asarray(distort(c, kind, lvl, rng), dtype=float)) for c in contents])
        for lvl in range(LEVELS)
    ]
    steps = np.diff(values) * direction
    assert (steps > 0).all(), values


def test_write_and_load_roundtrip(tmp_path):
    cfg = SyntheticConfig(seed=1, counts={"prior": 10, "pool": 6, "eval": 8})
    written = write_synthetic(tmp_path, cfg)
    assert written == cfg.counts
    for split, n in cfg.counts.items():
        with (tmp_path / split / "labels.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == n and {"filename", "mos"} <= set(rows[0])
        loaded = load_split(tmp_path, split)
        assert [it.mos for it in loaded] == [float(r["mos"]) for r in rows]
    assert (tmp_path / "eval" / loaded[0].filename).exists()


def test_a_longer_prior_extends_the_split_and_keeps_its_sources(data):
    # The demo's prior draws more images than the benchmark's prior split this way.
    longer = generate(SyntheticConfig(seed=3, counts={"prior": 600}))["prior"]
    assert len(longer) == 600
    assert all(
        np.array_equal(np.asarray(a.image), np.asarray(b.image)) and a.level == b.level
        for a, b in zip(data["prior"], longer, strict=False)
    )
    held_apart = {it.source for s in ("pool", "eval") for it in data[s]}
    assert not {it.source for it in longer} & held_apart
