"""Shared prefills in GRPO: the same log-probabilities and gradients as TRL's full forward, and
the shortcut really taken in training."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import GenerationConfig

from app.quality import grpo_prefix
from app.quality.grpo import GRPORoundConfig, train_grpo
from app.quality.grpo_prefix import shared_prefix_logps
from app.quality.loading import load_model
from app.quality.voting import VoteResult

G = 4


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray((rng.random((56, 56, 3)) * 255).astype("uint8")) for _ in range(6)]


def _batch(qm, images, order):
    """TRL's loss inputs: G copies of each prompt, in `order`, with 3 completion tokens each
    (some padded after EOS)."""
    rows = [[images[k]] for k in order]
    inputs = qm.encode("score", False, rows)
    tok = qm.processor.tokenizer
    digits = [tok.encode(str(d), add_special_tokens=False)[0] for d in range(1, 6)]
    eos, pad = qm.eos_ids[0], tok.pad_token_id
    completion = torch.tensor(
        [[digits[i % 5], eos, pad] if i % 3 else [digits[i % 5], digits[0], eos] for i in order]
    )
    mask = (completion != pad).long()
    return {
        "input_ids": torch.cat([inputs["input_ids"], completion], 1),
        "attention_mask": torch.cat([inputs["attention_mask"], mask], 1),
        "mm_token_type_ids": torch.cat(
            [inputs["mm_token_type_ids"], torch.zeros_like(completion)], 1
        ),
        "pixel_values": inputs["pixel_values"],
        "image_grid_thw": inputs["image_grid_thw"],
        "completion": completion,
        "completion_mask": mask,
    }


def _grads(model):
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("shuffled", "vocab_chunk"), [(False, 32768), (True, 100)])
def test_logps_and_gradients_equal_the_full_forward(
    tiny_answering_model_dir, images, shuffled, vocab_chunk
):
    qm = load_model(str(tiny_answering_model_dir), device="cpu", dtype="float32")
    model = qm.model.train()
    order = [k for k in range(3) for _ in range(G)]
    if shuffled:  # TRL shuffles a generation batch before the loss
        order = list(np.random.default_rng(1).permutation(order))
    b = _batch(qm, images, order)
    width = b["completion"].size(1)
    logits = model(
        input_ids=b["input_ids"],
        attention_mask=b["attention_mask"],
        pixel_values=b["pixel_values"],
        image_grid_thw=b["image_grid_thw"],
        mm_token_type_ids=b["mm_token_type_ids"],
    ).logits[:, -width - 1 : -1]
    full = torch.log_softmax(logits.float() / 0.7, -1)
    full = full.gather(-1, b["completion"].unsqueeze(-1)).squeeze(-1)
    (full * b["completion_mask"]).sum().backward()
    expected = _grads(model)
    model.zero_grad()

    shared, entropy = shared_prefix_logps(
        model,
        b["input_ids"],
        b["attention_mask"],
        width,
        pixel_values=b["pixel_values"],
        image_grid_thw=b["image_grid_thw"],
        mm_token_type_ids=b["mm_token_type_ids"],
        temperature=0.7,
        compute_entropy=True,
        vocab_chunk=vocab_chunk,  # the tiny vocabulary (551) in one chunk, or in six
    )
    mask = b["completion_mask"].bool()
    assert torch.allclose(shared[mask], full[mask], atol=1e-5)
    assert bool((shared[~mask] == 0).all())  # TRL's convention at padding
    probs = torch.softmax(logits.detach().float() / 0.7, -1)
    expected_entropy = -(probs * probs.log()).sum(-1)
    assert torch.allclose(entropy[mask], expected_entropy[mask], atol=1e-4)
    (shared * b["completion_mask"]).sum().backward()
    got = _grads(model)
    assert got.keys() == expected.keys()
    for name, grad in expected.items():  # equal up to float summation order
        assert torch.linalg.norm(got[name] - grad) <= 1e-4 * torch.linalg.norm(grad), name


def test_no_shortcut_without_repeated_prompts(tiny_answering_model_dir, images):
    qm = load_model(str(tiny_answering_model_dir), device="cpu", dtype="float32")
    b = _batch(qm, images, [0, 1, 2, 3])
    assert (
        shared_prefix_logps(
            qm.model,
            b["input_ids"],
            b["attention_mask"],
            3,
            pixel_values=b["pixel_values"],
            image_grid_thw=b["image_grid_thw"],
            mm_token_type_ids=b["mm_token_type_ids"],
        )
        is None
    )


def test_shared_generate_returns_what_generate_would(tiny_answering_model_dir, images):
    qm = load_model(str(tiny_answering_model_dir), device="cpu", dtype="float32")
    inputs = qm.encode("score", False, [[images[k]] for k in (0, 1) for _ in range(G)])
    tok = qm.processor.tokenizer
    config = GenerationConfig(
        max_new_tokens=4,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=qm.eos_ids,
        suppress_tokens=qm.suppress_ids,
    )
    torch.manual_seed(0)
    out = grpo_prefix._shared_generate(qm.model, inputs, G, config)
    width = inputs["input_ids"].size(1)
    assert torch.equal(out[:, :width], inputs["input_ids"])
    completions = out[:, width:]
    for row in completions.tolist():
        assert not set(row) & set(qm.suppress_ids)
        if qm.eos_ids[0] in row:  # after the first EOS only padding, as generate pads
            cut = row.index(qm.eos_ids[0])
            assert all(t == tok.pad_token_id for t in row[cut + 1 :])
    # Rows not in runs of G identical prompts are left to generate.
    mixed = qm.encode("score", False, [[images[k]] for k in (0, 1, 0, 1)])
    assert grpo_prefix._shared_generate(qm.model, mixed, 2, config) is None


def test_training_takes_the_shortcut(tiny_answering_model_dir, images, tmp_path, monkeypatch):
    taken = {"logps": [], "generate": []}
    logps, generate = grpo_prefix.shared_prefix_logps, grpo_prefix._shared_generate

    def spy_logps(*args, **kwargs):
        result = logps(*args, **kwargs)
        taken["logps"].append(result is not None)
        return result

    def spy_generate(*args, **kwargs):
        result = generate(*args, **kwargs)
        taken["generate"].append(result is not None)
        return result

    monkeypatch.setattr(grpo_prefix, "shared_prefix_logps", spy_logps)
    monkeypatch.setattr(grpo_prefix, "_shared_generate", spy_generate)
    votes = [VoteResult(a, b, 3, 1, 0, float(a < b)) for a in range(4) for b in range(a + 1, 4)]
    config = GRPORoundConfig(
        num_generations=G, learning_rate=1e-3, pairs_per_step=2, max_steps=2, device="cpu"
    )
    train_grpo(tiny_answering_model_dir, votes, images.__getitem__, config, tmp_path / "out")
    # Per step: one sampling call, the reference model's and the policy's log-probabilities.
    assert taken == {"logps": [True] * 4, "generate": [True] * 2}
