"""Completions cut off at max_completion_length contribute no loss (reasoning default)."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from app.quality.grpo import GRPORoundConfig, resolve_prompting, train_grpo
from app.quality.voting import VoteResult


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return {
        k: Image.fromarray((rng.random((56, 56, 3)) * 255 * (k + 1) / 6).astype("uint8"))
        for k in range(6)
    }


def _votes():
    return [
        VoteResult(a, b, 3, 1, 0, 1.0 if a > b else 0.0) for a in range(6) for b in range(a + 1, 6)
    ]


def test_the_reasoning_prompt_masks_truncated_completions(tiny_model_dir):
    assert resolve_prompting(
        GRPORoundConfig(reasoning=True), tiny_model_dir
    ).mask_truncated_completions
    answer_only = resolve_prompting(GRPORoundConfig(reasoning=False), tiny_model_dir)
    assert answer_only.mask_truncated_completions is False
    forced = GRPORoundConfig(reasoning=False, mask_truncated_completions=True)
    assert resolve_prompting(forced, tiny_model_dir).mask_truncated_completions is True


@pytest.mark.parametrize("masked", [True, False])
def test_a_step_of_only_truncated_completions_has_no_gradient_when_masked(
    masked, tiny_answering_model_dir, images, tmp_path
):
    # The answering model writes one digit and then its end token: one token cuts every
    # completion off after a parsable digit, so the rewards still differ within groups.
    config = GRPORoundConfig(
        num_generations=4,
        learning_rate=1e-3,
        beta=0.0,
        pairs_per_step=2,
        max_steps=1,
        max_completion_length=1,
        reasoning=False,
        mask_truncated_completions=masked,
        device="cpu",
        precision="fp32",
    )
    out = tmp_path / "candidate"
    metrics = train_grpo(
        tiny_answering_model_dir, _votes(), images.__getitem__, config, out
    ).metrics
    per_step = metrics["per_step"]
    assert per_step["clipped_ratio"] == [1.0]
    assert per_step["reward_std"][0] > 0.0  # the groups did have advantages
    parent = load_file(tiny_answering_model_dir / "model.safetensors")
    child = load_file(out / "model.safetensors")
    unchanged = all(torch.equal(parent[k], child[k]) for k in parent)
    if masked:
        assert per_step["grad_norm"] == [0.0] and unchanged
    else:
        assert per_step["grad_norm"][0] > 0.0 and not unchanged
