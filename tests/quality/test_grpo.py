import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from app.quality.checkpoint import weights_digest, write_atomically
from app.quality.grpo import (
    GRPORoundConfig,
    TrainingCancelled,
    build_pair_dataset,
    train_grpo,
    training_pairs,
)
from app.quality.loading import reasoning_default
from app.quality.voting import VoteResult


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return {
        k: Image.fromarray((rng.random((56, 56, 3)) * 255 * (k + 1) / 6).astype("uint8"))
        for k in range(6)
    }


@pytest.fixture(scope="module")
def votes():
    rows = [
        VoteResult(a, b, 3, 1, 0, 1.0 if a > b else 0.0) for a in range(6) for b in range(a + 1, 6)
    ]
    rows.append(VoteResult(0, 5, 0, 0, 4, None))  # no label: never trained on
    rows.append(VoteResult(1, 4, 1, 3, 0, 0.0, holdout=True))  # holdout: never trained on
    return rows


def small_config(**overrides):
    base = dict(
        num_generations=4,
        learning_rate=1e-3,
        beta=0.05,
        pairs_per_step=2,
        max_steps=3,
        format_reward_weight=1.0,
        seed=0,
        device="cpu",
    )
    base.update(overrides)
    return GRPORoundConfig(**base)


def test_defaults_are_the_papers():
    c = GRPORoundConfig()
    assert (c.num_generations, c.learning_rate, c.beta, c.temperature) == (32, 3e-7, 0.05, 1.0)
    assert c.format_reward_weight == 0.0
    with pytest.raises(ValueError):
        GRPORoundConfig(num_generations=1)
    with pytest.raises(ValueError):
        GRPORoundConfig(pairs_per_step=3, gradient_accumulation_steps=4)


def test_dataset_keeps_partners_adjacent_and_skips_unusable_pairs(votes, images):
    usable = training_pairs(votes)
    assert len(usable) == 15
    config = small_config(max_steps=10, reasoning=False)
    ds = build_pair_dataset(usable, images.__getitem__, config)
    assert len(ds) == 10 * 2 * 2  # steps x pairs per step x two images
    known = {(v.a, v.b): v.p_star for v in usable}
    for row in range(0, len(ds), 2):
        first, second = ds[row], ds[row + 1]
        assert first["pair_id"] == second["pair_id"] == row // 2
        assert (first["position"], second["position"]) == (0, 1)
        assert first["p_star"] == second["p_star"]
        assert first["p_star"] == known[(int(first["image_id"]), int(second["image_id"]))]
        assert first["prompt"][0]["content"][0]["type"] == "image"
        assert first["image"].size == (56, 56)
    # One pass when max_steps is None: every usable pair once, whole steps only.
    one_pass = build_pair_dataset(usable, images.__getitem__, small_config(max_steps=None))
    assert len(one_pass) == (15 // 2) * 2 * 2
    assert (
        len({one_pass[r]["image_id"] + one_pass[r + 1]["image_id"] for r in range(0, 28, 2)}) == 14
    )


def test_write_atomically_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "ckpt"

    def broken(staging):
        (staging / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(target, broken)
    assert list(tmp_path.iterdir()) == []

    def write(staging):
        (staging / "model.safetensors").write_bytes(b"w")
        (staging / "training_args.bin").write_bytes(b"pickle with paths")  # not a weight file

    digest = write_atomically(target, write)
    assert digest.startswith("sha256:") and digest == weights_digest(target)
    assert (target / "WEIGHTS_SHA256").read_text().strip() == digest
    with pytest.raises(FileExistsError):
        write_atomically(target, lambda d: None)


def test_train_writes_a_changed_checkpoint_with_metrics(
    tiny_answering_model_dir, votes, images, tmp_path
):
    out = tmp_path / "candidate"
    progress = []
    result = train_grpo(
        tiny_answering_model_dir,
        votes,
        images.__getitem__,
        small_config(),
        out,
        on_progress=lambda step, total: progress.append((step, total)),
    )
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert result.checkpoint_dir == out
    assert result.digest == weights_digest(out) != weights_digest(tiny_answering_model_dir)
    assert not (out / "training_args.bin").exists()
    # the child keeps the tiny model's answer-only prompting default
    assert reasoning_default(str(out)) is reasoning_default(str(tiny_answering_model_dir)) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate"]  # no staging left

    m = result.metrics
    assert m["steps"] == 3 and m["train_pairs"] == 15
    series = m["per_step"]
    assert len(series["reward_mean"]) == len(series["kl"]) == 3
    assert all(0.0 <= p <= 1.0 for p in series["parse_rate"])
    assert all(0.0 <= f <= 1.0 for f in series["frac_reward_zero_std"])
    # The random tiny model rarely emits a number; the format reward still separates a group's
    # parsable from unparsable answers, so the optimizer saw a real gradient.
    assert max(series["grad_norm"]) > 0.0
    parent = load_file(tiny_answering_model_dir / "model.safetensors")
    child = load_file(out / "model.safetensors")
    assert parent.keys() == child.keys()
    assert any(not torch.equal(parent[k], child[k]) for k in parent)


def test_cancel_stops_without_a_checkpoint(tiny_model_dir, votes, images, tmp_path):
    out = tmp_path / "candidate"
    with pytest.raises(TrainingCancelled):
        train_grpo(
            tiny_model_dir,
            votes,
            images.__getitem__,
            small_config(max_steps=5),
            out,
            should_stop=lambda: True,
        )
    assert list(tmp_path.iterdir()) == []
