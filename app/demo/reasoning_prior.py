"""Teach the full-vocabulary tiny model the reasoning format: `<think> ... </think>` of varying
length, then `\\boxed{x.xx}` (score, following brightness) or `\\boxed{0|1}` (compare).

Not a quality model: it gives voting, sampling, parsing, masking and GRPO tests completions
shaped like a real reasoning checkpoint's. Training touches only the embedding rows of the
tokens in its texts (softmax over those rows plus a uniform sample of the others), so the
trained state is small: it ships as app/demo/assets/tiny-reasoning-prior.safetensors.xz and is
applied on top of the seeded random init; without it (or for another spec) it is retrained.
Rebuild the asset with `python -m app.demo.reasoning_prior`.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load, save

from app.demo.reasoning_texts import (
    BRIGHT,
    COMPARE,
    DARK,
    FINALLY,
    GENERIC,
    MID,
    ORDINALS,
    brightness_clause,
    compare_completion,
    score_completion,
)
from app.demo.tiny import CHAT_TEMPLATE, Prior, build_tiny_model
from app.quality import prompts
from app.quality.model import QualityModel

ASSET = Path(__file__).parent / "assets" / "tiny-reasoning-prior.safetensors.xz"
PRIOR_NAME = "reasoning-format"


@dataclass
class ReasoningPriorConfig:
    """Supervised format prior on synthetic brightness images (reasoning prompts)."""

    steps: int = 300
    images_per_step: int = 4  # score examples per step
    pairs_per_step: int = 4  # compare examples per step
    # Score openings only ("<think> First, the image is dark"): cheap, and they carry the
    # image's evidence that long examples dilute.
    opening_images_per_step: int = 8
    lr: float = 3e-3
    chain_steps: int = 10  # the chain's hard end (at most len(ORDINALS))
    go_on: float = 0.8  # probability that a training text takes one more step
    negatives: int = 4096  # sampled rows outside the trained ones, per step
    image_sizes: tuple[int, ...] = (56, 84)  # 4 and 9 image tokens
    seed: int = 0


def _image(rng: np.random.Generator, size: int) -> tuple[Image.Image, float]:
    """A textured patch with a random brightness in [0, 1]; returns the image and brightness."""
    brightness = float(rng.random())
    base = rng.random(3) * 0.5 + 0.5
    texture = rng.random((size, size, 1)) * 0.3 + 0.7
    pixels = np.clip(base * texture * brightness, 0, 1)
    return Image.fromarray((pixels * 255).astype(np.uint8)), brightness


def chain_length(rng: np.random.Generator, config: ReasoningPriorConfig) -> int:
    """Steps before "Finally": one, then one more with probability go_on, up to the hard end."""
    steps = 1
    while steps < config.chain_steps and rng.random() < config.go_on:
        steps += 1
    return steps


def _batch(
    qm: QualityModel, task: str, rows, completions: list[str], close: bool = True
) -> tuple[dict, torch.Tensor]:
    """Left-padded prompts, then right-padded completions (+ <|im_end|> when `close`); labels
    on those only."""
    inputs = qm.encode(task, True, rows)
    tok = qm.processor.tokenizer
    end = qm.eos_ids[:1] if close else []
    answers = [tok.encode(c, add_special_tokens=False) + end for c in completions]
    width = max(map(len, answers))
    pad = tok.pad_token_id
    answer = torch.tensor([a + [pad] * (width - len(a)) for a in answers])
    filled = torch.tensor([[1] * len(a) + [0] * (width - len(a)) for a in answers])
    prompt_len = inputs["input_ids"].shape[1]
    inputs["input_ids"] = torch.cat([inputs["input_ids"], answer], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], filled], dim=1)
    if "mm_token_type_ids" in inputs:
        types = inputs["mm_token_type_ids"]
        inputs["mm_token_type_ids"] = torch.cat(
            [types, torch.zeros_like(answer, dtype=types.dtype)], 1
        )
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, prompt_len:] = torch.where(filled.bool(), answer, -100)
    return inputs, labels


class _RowTrainedEmbedding(torch.nn.Module):
    """The embedding with only `trained` rows as a parameter: no 151936-row gradient or AdamW
    state per step, and the other rows provably unchanged."""

    def __init__(self, base: torch.Tensor, trained: torch.Tensor) -> None:
        super().__init__()
        self.base = base.detach()
        self.trained = trained
        self.rows = torch.nn.Parameter(self.base[trained].clone())
        self.position = torch.full((base.shape[0],), -1, dtype=torch.long)
        self.position[trained] = torch.arange(len(trained))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        position = self.position[ids]
        own = self.rows[position.clamp(min=0)]
        return torch.where((position >= 0)[..., None], own, self.base[ids])


def _sampled_softmax_loss(
    hidden: torch.Tensor,
    labels: torch.Tensor,
    embed: _RowTrainedEmbedding,
    pool: torch.Tensor,
    gen: torch.Generator,
    negatives: int,
) -> torch.Tensor:
    """Next-token cross-entropy over the trained rows plus a uniform sample of the other rows
    (`pool`), its mass scaled up to all of them: the full softmax at a fraction of its cost."""
    hidden, targets = hidden[:, :-1], labels[:, 1:]
    keep = targets != -100
    h, targets = hidden[keep], targets[keep]
    sample = pool[torch.randint(len(pool), (negatives,), generator=gen)]
    own = h @ embed.rows.T
    rest = h @ embed.base[sample].T + math.log(len(pool) / negatives)
    log_z = torch.logsumexp(torch.cat([own, rest], dim=1), dim=1)
    return (log_z - own.gather(1, embed.position[targets][:, None]).squeeze(1)).mean()


def _trained_ids(qm: QualityModel, config: ReasoningPriorConfig) -> torch.Tensor:
    """Every token id the prior's prompts and texts can contain."""
    tok = qm.processor.tokenizer
    texts = [qm._template("score", True), qm._template("compare", True)]
    clauses = GENERIC + DARK + MID + BRIGHT + COMPARE[0] + COMPARE[1]
    texts += [" " + c for c in clauses] + ["<think> ", " </think> \\boxed{", "}"]
    texts += [f" {o}," for o in (*ORDINALS, FINALLY)] + [f"<think> {ORDINALS[0]},"]
    texts += [f"{d}" for d in range(10)] + [".", ",", " and"]
    ids = {i for t in texts for i in tok.encode(t, add_special_tokens=False)}
    ids |= set(qm.eos_ids) | {tok.pad_token_id}
    return torch.tensor(sorted(ids))


def train_reasoning_prior(
    model, processor, config: ReasoningPriorConfig | None = None
) -> torch.Tensor:
    """Fine-tune `model` in place on the reasoning format; returns the embedding rows it trained
    (the only rows that changed: the others' gradients are zeroed and AdamW has no decay)."""
    config = config or ReasoningPriorConfig()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    qm = QualityModel(
        model, processor, source="<training>", device=torch.device("cpu"), max_pixels=112 * 112
    )
    trained = _trained_ids(qm, config)
    original = model.get_input_embeddings()
    embed = _RowTrainedEmbedding(original.weight, trained)
    others = torch.ones(embed.base.shape[0], dtype=torch.bool)
    others[trained] = False
    pool = others.nonzero().squeeze(1)
    model.set_input_embeddings(embed)
    original.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]  # tied lm_head excluded
    optim = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    model.train()
    for _ in range(config.steps):
        size = int(rng.choice(config.image_sizes))
        singles, score_texts = [], []
        for _ in range(config.images_per_step):
            img, bright = _image(rng, size)
            singles.append((img,))
            score_texts.append(score_completion(rng, bright, chain_length(rng, config)))
        pairs, compare_texts = [], []
        for _ in range(config.pairs_per_step):
            (a, ba), (b, bb) = _image(rng, size), _image(rng, size)
            pairs.append((a, b))
            compare_texts.append(compare_completion(rng, ba, bb, chain_length(rng, config)))
        openings, opening_texts = [], []
        for _ in range(config.opening_images_per_step):
            img, bright = _image(rng, size)
            openings.append((img,))
            opening_texts.append(f"<think> {ORDINALS[0]}, {brightness_clause(rng, bright)},")
        loss = 0.0
        for task, rows, texts, close in (
            ("score", singles, score_texts, True),
            ("compare", pairs, compare_texts, True),
            ("score", openings, opening_texts, False),
        ):
            inputs, labels = _batch(qm, task, rows, texts, close)
            hidden = model.model(**inputs).last_hidden_state
            loss = loss + _sampled_softmax_loss(hidden, labels, embed, pool, gen, config.negatives)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
    with torch.no_grad():
        original.weight[trained] = embed.rows
    original.weight.requires_grad_(True)
    model.set_input_embeddings(original)
    model.eval()
    return trained


# ---- the shipped asset ---------------------------------------------------------------------


def _key(model, config: ReasoningPriorConfig) -> str:
    """What the asset was trained from and for: the random init it is applied on (parameter
    shapes, embedding bytes), the prior's settings and texts, and the reasoning prompts. Call
    before training."""
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        digest.update(f"{name}:{tuple(param.shape)};".encode())
    digest.update(model.get_input_embeddings().weight.detach().float().numpy().tobytes())
    text = json.dumps(
        [
            asdict(config),
            [GENERIC, DARK, MID, BRIGHT, COMPARE[0], COMPARE[1], ORDINALS, FINALLY],
            prompts.score_messages(True),
            prompts.compare_messages(True),
            CHAT_TEMPLATE,
        ],
        sort_keys=True,
    )
    digest.update(text.encode())
    return digest.hexdigest()


def _embed_name(model) -> str:
    embed = model.get_input_embeddings().weight
    return next(n for n, p in model.named_parameters() if p is embed)


def asset_bytes(model, trained: torch.Tensor, key: str) -> bytes:
    """The trained state: every parameter but the embedding, plus its trained rows (xz)."""
    embed_name = _embed_name(model)
    tensors = {n: p.detach().contiguous() for n, p in model.named_parameters() if n != embed_name}
    tensors["__trained_ids__"] = trained
    tensors["__trained_rows__"] = model.get_input_embeddings().weight.detach()[trained].clone()
    return lzma.compress(save(tensors, metadata={"key": key}), preset=9)


def apply_asset(model, data: bytes, key: str) -> bool:
    """Load the shipped state into `model` when it was trained for `key`; False otherwise."""
    raw = lzma.decompress(data)
    # A safetensors file starts with its header's length and the header (JSON, with metadata).
    meta = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")]).get("__metadata__", {})
    if meta.get("key") != key:
        return False
    tensors = load(raw)
    trained, rows = tensors.pop("__trained_ids__"), tensors.pop("__trained_rows__")
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, value in tensors.items():
            params[name].copy_(value)
        model.get_input_embeddings().weight[trained] = rows
    return True


def reasoning_prior(config: ReasoningPriorConfig | None = None, *, use_asset: bool = True) -> Prior:
    """A build_tiny_model prior: the shipped asset where it was trained from this model's init
    with these settings, else training (about a minute on a free CPU core)."""
    config = config or ReasoningPriorConfig()

    def prior(model, processor) -> dict:
        key = _key(model, config)
        if use_asset and ASSET.is_file() and apply_asset(model, ASSET.read_bytes(), key):
            return {"prior": PRIOR_NAME, "prior_source": "asset"}
        train_reasoning_prior(model, processor, config)
        return {"prior": PRIOR_NAME, "prior_source": "trained"}

    return prior


def build_reasoning_model(path: str | Path, *, seed: int = 0, use_asset: bool = True) -> Path:
    """builtin:tiny-reasoning: the faithful tiny model (Qwen vocabulary, real layout, marked as
    reasoning) with the reasoning format prior."""
    return build_tiny_model(
        path, vocab="qwen", seed=seed, prior=reasoning_prior(use_asset=use_asset)
    )


def write_asset(seed: int = 0, config: ReasoningPriorConfig | None = None) -> Path:
    """Retrain the prior from the seeded init and write the shipped asset."""
    config = config or ReasoningPriorConfig()
    captured = {}

    def prior(model, processor) -> dict:
        key = _key(model, config)
        trained = train_reasoning_prior(model, processor, config)
        captured["data"] = asset_bytes(model, trained, key)
        return {"prior": PRIOR_NAME, "prior_source": "trained"}

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_model(Path(tmp) / "m", vocab="qwen", seed=seed, prior=prior)
    ASSET.write_bytes(captured["data"])
    return ASSET


if __name__ == "__main__":
    print(write_asset())
