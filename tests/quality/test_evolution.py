import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from app.quality.checkpoint import weights_digest
from app.quality.evolution import RoundConfig, run_round
from app.quality.grpo import GRPORoundConfig, TrainingCancelled
from app.quality.loading import load_model
from app.quality.voting import VoteConfig


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    paths = []
    for k in range(10):
        pixels = rng.random((56, 56, 3)) * 255 * (k + 1) / 10  # darker to brighter
        path = folder / f"img{k}.png"
        Image.fromarray(pixels.astype("uint8")).save(path)
        paths.append(path)
    return paths


def small_round(**grpo):
    return RoundConfig(
        n_pairs=16,
        holdout_fraction=0.25,
        vote=VoteConfig(k=8, mode="logits", chunk_size=5),
        grpo=GRPORoundConfig(
            num_generations=4,
            learning_rate=1e-3,
            pairs_per_step=2,
            max_steps=4,
            format_reward_weight=1.0,
            device="cpu",
            **grpo,
        ),
        device="cpu",
    )


def test_one_round_on_the_tiny_model(tiny_answering_model_dir, image_paths, tmp_path):
    stages = []
    result = run_round(
        tiny_answering_model_dir,
        image_paths,
        small_round(),
        tmp_path / "round1",
        seed=3,
        on_progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    assert [s for s in stages if s[0] == "vote"] == [
        ("vote", 1, 4),
        ("vote", 2, 4),
        ("vote", 3, 4),
        ("vote", 4, 4),
    ]
    assert [s for s in stages if s[0] == "train"][-1] == ("train", 4, 4)

    m = result.metrics
    assert m["votes"]["pairs"] == 16 and m["votes"]["holdout_pairs"] == 4
    assert m["votes"]["train_pairs"] == 12  # logits votes always give a label
    assert m["train"]["steps"] == 4
    assert max(m["train"]["per_step"]["grad_norm"]) > 0.0
    for who in ("parent", "candidate"):
        holdout = m["holdout"][who]
        assert holdout["pairs"] == 4
        assert 0.0 <= holdout["compare_accuracy"] <= 1.0
        assert math.isnan(holdout["score_accuracy"]) or 0.0 <= holdout["score_accuracy"] <= 1.0
    # The parent's own logits votes are the holdout labels, so it agrees with them fully.
    assert m["holdout"]["parent"]["compare_accuracy"] == 1.0
    assert set(m["timings"]) >= {"vote_s", "train_s", "eval_candidate_s"}

    # The candidate is complete, differs from its parent and scores images.
    assert result.digest == weights_digest(result.checkpoint_dir) != m["parent_digest"]
    parent = load_file(tiny_answering_model_dir / "model.safetensors")
    child = load_file(result.checkpoint_dir / "model.safetensors")
    assert any(not torch.equal(parent[k], child[k]) for k in parent)
    candidate = load_model(str(result.checkpoint_dir), device="cpu")
    fast = candidate.score(image_paths[:3], mode="fast")
    assert all(1.0 <= s.score <= 5.0 for s in fast)
    sampled = candidate.score(image_paths[:2], mode="sampled", n=4, seed=0)
    assert all(s.n == 4 and 0 <= s.valid <= 4 for s in sampled)


def test_round_cancelled_while_voting_writes_nothing(tiny_model_dir, image_paths, tmp_path):
    with pytest.raises(TrainingCancelled):
        run_round(
            tiny_model_dir, image_paths, small_round(), tmp_path / "r", should_stop=lambda: True
        )
    assert list(tmp_path.iterdir()) == []
