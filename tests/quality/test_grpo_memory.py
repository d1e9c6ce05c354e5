"""GRPO memory: log-probabilities without vocabulary-wide logits per position, and gradient
checkpointing in one process and under `accelerate launch`."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from app.quality import grpo_prefix
from app.quality.grpo import GRPORoundConfig, train_grpo
from app.quality.grpo_launch import launch_train_grpo
from app.quality.grpo_prefix import shared_prefix_logps
from app.quality.loading import load_model
from app.quality.voting import VoteResult

G = 4


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [
        Image.fromarray((rng.random((56, 56, 3)) * 255 * (k + 1) / 6).astype("uint8"))
        for k in range(6)
    ]


class _Shapes(TorchDispatchMode):
    """Records the shape of every tensor an op returns (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.shapes += [tuple(t.shape) for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        return out


def test_log_probs_never_hold_a_vocabulary_row_per_position(tiny_answering_model_dir, images):
    qm = load_model(str(tiny_answering_model_dir), device="cpu", dtype="float32")
    model = qm.model.train()
    vocab = model.get_output_embeddings().weight.size(0)
    inputs = qm.encode("score", False, [[images[k]] for k in range(3) for _ in range(G)])
    width = 6
    completion = torch.randint(0, vocab, (inputs["input_ids"].size(0), width))
    ids = torch.cat([inputs["input_ids"], completion], 1)
    mask = torch.cat([inputs["attention_mask"], torch.ones_like(completion)], 1)
    types = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(completion)], 1)
    with _Shapes() as seen:
        logps, entropy = shared_prefix_logps(
            model,
            ids,
            mask,
            width,
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
            mm_token_type_ids=types,
            compute_entropy=True,
            vocab_chunk=vocab // 4,
        )
        (logps.sum() + entropy.sum()).backward()
    assert logps.shape == entropy.shape == completion.shape
    # The old path built (rows, width, vocab) logits and their float copy; chunks of a quarter
    # of the vocabulary leave no tensor with a whole vocabulary row per position.
    assert seen.shapes and not [s for s in seen.shapes if len(s) > 1 and s[-1] == vocab]


def _votes():
    return [VoteResult(a, b, 3, 1, 0, float(a > b)) for a in range(4) for b in range(a + 1, 4)]


def _changed(parent_dir, child_dir) -> bool:
    parent = load_file(str(next(parent_dir.glob("*.safetensors"))))
    child = load_file(str(next(child_dir.glob("*.safetensors"))))
    return any(not torch.equal(parent[k], child[k]) for k in parent)


def test_gradient_checkpointing_trains_in_one_process(
    tiny_answering_model_dir, images, tmp_path, monkeypatch
):
    taken = []
    logps = grpo_prefix.shared_prefix_logps

    def spy(*args, **kwargs):
        result = logps(*args, **kwargs)
        taken.append((torch.is_grad_enabled(), result is not None))
        return result

    monkeypatch.setattr(grpo_prefix, "shared_prefix_logps", spy)
    config = GRPORoundConfig(
        num_generations=G,
        learning_rate=1e-3,
        pairs_per_step=2,
        max_steps=1,
        max_completion_length=4,
        format_reward_weight=1.0,
        gradient_checkpointing=True,
        device="cpu",
    )
    out = tmp_path / "out"
    result = train_grpo(tiny_answering_model_dir, _votes(), images.__getitem__, config, out)
    assert result.metrics["steps"] == 1 and _changed(tiny_answering_model_dir, out)
    # The reference pass (no gradients) keeps the shared prefill; the policy's pass, whose
    # checkpointed layers cannot keep a KV cache, takes TRL's chunked path.
    assert taken == [(False, True), (True, False)]


def test_a_generation_batch_is_scored_one_micro_batch_at_a_time(
    tiny_answering_model_dir, images, tmp_path, monkeypatch
):
    rows = []
    logps = grpo_prefix.shared_prefix_logps

    def spy(model, input_ids, *args, **kwargs):
        result = logps(model, input_ids, *args, **kwargs)
        rows.append((input_ids.size(0), result is not None))
        return result

    monkeypatch.setattr(grpo_prefix, "shared_prefix_logps", spy)
    config = GRPORoundConfig(
        num_generations=G,
        pairs_per_step=2,
        gradient_accumulation_steps=2,
        max_steps=1,
        max_completion_length=4,
        device="cpu",
    )
    train_grpo(tiny_answering_model_dir, _votes(), images.__getitem__, config, tmp_path / "out")
    # 16 completions per step in micro-batches of 8: the no-gradient passes over the whole
    # generation batch (reference, old policy) take 8 rows at a time too, still shared.
    assert len(rows) >= 4 and set(rows) == {(8, True)}


@pytest.mark.slow
def test_gradient_checkpointing_trains_under_accelerate_launch(
    tiny_answering_model_dir, images, tmp_path
):
    paths = {}
    for k, image in enumerate(images):
        paths[str(k)] = str(tmp_path / f"{k}.png")
        image.save(paths[str(k)])
    votes = [
        VoteResult(str(a), str(b), 3, 1, 0, float(a > b)) for a in range(4) for b in range(a + 1, 4)
    ]
    config = GRPORoundConfig(
        num_generations=2,
        pairs_per_step=2,
        max_completion_length=4,
        learning_rate=1e-3,
        max_steps=1,
        format_reward_weight=1.0,
        gradient_checkpointing=True,
        device="cpu",
        num_processes=2,
    )
    out = tmp_path / "candidate"
    result = launch_train_grpo(
        tiny_answering_model_dir, votes, paths, config, out, poll_seconds=0.1
    )
    assert result.metrics["steps"] == 1 and _changed(tiny_answering_model_dir, out)
