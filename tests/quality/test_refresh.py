"""The comparison refresh: it learns the labels it is given, holds the score answer, and a round
votes and trains with the refreshed parent while its lineage and gate keep the parent."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.quality.checkpoint import weights_digest
from app.quality.evolution import RoundConfig, evaluate_on_pairs, run_round
from app.quality.grpo import GRPORoundConfig
from app.quality.loading import load_model
from app.quality.refresh import RefreshConfig, refresh_comparisons, refresh_labels
from app.quality.voting import VoteConfig, VoteResult


@pytest.fixture(scope="module")
def images():
    """Textured patches from dark to bright (the answering model prefers bright ones)."""
    rng = np.random.default_rng(0)
    return {
        k: Image.fromarray(
            ((rng.random((56, 56, 3)) * 0.3 + 0.7) * (k + 1) / 8 * 255).astype("uint8")
        )
        for k in range(8)
    }


@pytest.fixture(scope="module")
def darker_is_better():
    """Labels the answering model disagrees with: the darker image of every pair is better."""
    return [VoteResult(a, b, 30, 2, 0, 1.0) for a in range(8) for b in range(a + 1, 8)]


def _agreement(model_dir, votes, images) -> float:
    qm = load_model(str(model_dir), device="cpu")
    compared = qm.compare([(images[v.a], images[v.b]) for v in votes], mode="logits")
    return float(np.mean([c.p_first > 0.5 for c in compared]))


def _score_distribution(model_dir, images) -> torch.Tensor:
    qm = load_model(str(model_dir), device="cpu")
    inputs = qm.encode("score", False, [[img] for img in images.values()])
    with torch.no_grad():
        return torch.softmax(qm.model(**inputs).logits[:, -1].float(), -1)


def test_refresh_learns_its_labels_and_holds_the_scores(
    tiny_answering_model_dir, darker_is_better, images, tmp_path
):
    before = _agreement(tiny_answering_model_dir, darker_is_better, images)
    config = RefreshConfig(steps=40, learning_rate=2e-3, pairs_per_step=8)
    held = refresh_comparisons(
        tiny_answering_model_dir, tmp_path / "held", darker_is_better, images.__getitem__, config
    )
    free = refresh_comparisons(
        tiny_answering_model_dir,
        tmp_path / "free",
        darker_is_better,
        images.__getitem__,
        dataclasses.replace(config, keep_scores=0.0),
    )
    assert before < 0.5 < _agreement(held, darker_is_better, images)
    start = _score_distribution(tiny_answering_model_dir, images)

    def drift(folder):
        return float((start - _score_distribution(folder, images)).abs().sum(-1).mean())

    assert drift(held) < drift(free)
    assert load_model(str(held), device="cpu").reasoning_default is False


def test_refresh_needs_labels(tiny_answering_model_dir, images, tmp_path):
    unusable = [VoteResult(0, 1, 16, 16, 0, 0.5), VoteResult(0, 2, 30, 2, 0, 1.0, holdout=True)]
    assert refresh_labels(unusable) == []
    with pytest.raises(ValueError, match="no labelled pair"):
        refresh_comparisons(
            tiny_answering_model_dir, tmp_path / "r", unusable, images.__getitem__, RefreshConfig(2)
        )


def test_a_round_votes_and_trains_with_the_refreshed_parent(
    tiny_answering_model_dir, darker_is_better, images, tmp_path
):
    paths = []
    for k, img in images.items():
        paths.append(tmp_path / f"img{k}.png")
        img.save(paths[-1])
    labels = [dataclasses.replace(v, a=paths[v.a], b=paths[v.b]) for v in darker_is_better]
    loader = {str(p): img for p, img in zip(paths, images.values(), strict=True)}
    config = RoundConfig(
        n_pairs=12,
        holdout_fraction=0.25,
        vote=VoteConfig(k=8, mode="logits", chunk_size=6),
        grpo=GRPORoundConfig(
            num_generations=4, learning_rate=1e-3, pairs_per_step=2, max_steps=1, device="cpu"
        ),
        refresh=RefreshConfig(steps=40, learning_rate=2e-3, pairs_per_step=8),
        device="cpu",
    )
    out = tmp_path / "rounds" / "candidate"
    result = run_round(
        tiny_answering_model_dir,
        paths,
        config,
        out,
        seed=1,
        parent_labels=(labels, lambda key: loader[str(key)]),
    )
    m = result.metrics
    assert m["refresh"] == {"steps": 40, "pairs": len(labels)}
    assert m["parent_digest"] == weights_digest(tiny_answering_model_dir)
    # The refreshed parent voted: on the voted pairs the darker image mostly wins.
    darker_won = [
        (v.p_star > 0.5) == (int(Path(v.a).stem[3:]) < int(Path(v.b).stem[3:]))
        for v in result.votes
    ]
    assert np.mean(darker_won) > 0.5
    # The gate's holdout measure is the parent's own, not its refresh's.
    holdout = [v for v in result.votes if v.holdout]
    parent = load_model(str(tiny_answering_model_dir), device="cpu")
    own = evaluate_on_pairs(parent, holdout, lambda key: loader[str(key)], seed=1)
    assert m["holdout"]["parent"]["compare_accuracy"] == own["compare_accuracy"]
    assert own["compare_accuracy"] < 1.0  # the voter agrees fully with its own logits votes
    assert sorted(p.name for p in out.parent.iterdir()) == ["candidate"]  # refresh removed
