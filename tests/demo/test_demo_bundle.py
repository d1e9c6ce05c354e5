"""The shipped builtin:demo-evolved: unpacks to the recorded lineage and scores by quality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.demo import demo_bundle
from app.demo.demo import DemoConfig, measure
from app.demo.measure import level_pairs
from app.demo.synthetic import generate
from app.model_sources import resolve_model_source
from app.quality.loading import load_model
from tests.demo.test_demo import GAIN_BAR

pytestmark = pytest.mark.skipif(not demo_bundle.available(), reason="no shipped archive")


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    return resolve_model_source("builtin:demo-evolved", tmp_path_factory.mktemp("models"))


def test_shipped_model_unpacks_with_its_lineage(evolved) -> None:
    lineage = json.loads((Path(evolved) / "lineage.json").read_text())
    assert lineage["base"] == "builtin:demo" and lineage["rounds"] == 2
    assert lineage["checkpoints"] == ["lineage/round-0", "lineage/round-1", "."]
    rows = lineage["table"]
    assert rows[2]["srcc_sampled"] - rows[0]["srcc_sampled"] >= GAIN_BAR
    assert rows[2]["score_std"] > 0.5


def test_shipped_model_scores_respond_to_quality(evolved) -> None:
    """Re-measured here on the demo's own eval split: the recorded gain is real."""
    config = DemoConfig()
    items = generate(config.synthetic)["eval"]
    pairs = level_pairs(items, 200, config.seed)
    final = measure(load_model(evolved), items, pairs, config)
    base = measure(load_model(str(Path(evolved) / "lineage" / "round-0")), items, pairs, config)
    assert final["srcc_sampled"] - base["srcc_sampled"] >= GAIN_BAR
    assert final["score_std"] > 0.5
