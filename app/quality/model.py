"""Ask a loaded vision-language model for quality scores and pairwise preferences
(app/quality/loading.py loads one); the modes and result types are in app/quality/results.py."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from app.quality import prompts
from app.quality.boxed import append_continuations, box_prefixes
from app.quality.encoding import PromptEncoder
from app.quality.images import ImageSource, PreparedImage, prepare_image
from app.quality.parsing import parse_choice, parse_score
from app.quality.results import (
    MAX_NEW_TOKENS,
    RATINGS,
    CompareMode,
    CompareResult,
    ModelClosed,  # noqa: F401 - the serving side names it from here
    ScoreMode,
    ScoreResult,
    serving_mode,
)
from app.quality.sampling import VISION_TOKENS, SamplingParams, sample_continuations


def _single_token_id(tokenizer, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"{text!r} is not a single token in this vocabulary: {ids}")
    return ids[0]


class QualityModel:
    """A loaded VLM with its processor; score() and compare() are the service's questions."""

    def __init__(
        self,
        model,
        processor,
        *,
        source: str,
        device: torch.device,
        max_pixels: int,
        reasoning_default: bool = True,
        batch_size: int = 8,
    ) -> None:
        self.model = model
        self.processor = processor
        self.source = source
        self.device = device
        self.max_pixels = max_pixels
        self.reasoning_default = reasoning_default
        self.batch_size = batch_size
        tok = processor.tokenizer
        self.rating_ids = [_single_token_id(tok, str(r)) for r in RATINGS]
        self.choice_ids = [_single_token_id(tok, "0"), _single_token_id(tok, "1")]
        vocab = tok.get_vocab()
        self.suppress_ids = [vocab[t] for t in VISION_TOKENS if t in vocab]
        eos = [tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>") if t in vocab]
        self.eos_ids = eos or [tok.eos_token_id]
        self._templates: dict[tuple[str, bool], str] = {}
        self._encoder = PromptEncoder(processor)

    def close(self) -> None:
        """Release what the model holds outside this process (nothing for transformers)."""

    def serving_mode(self, task: str) -> str:
        """This model's default mode for "score" or "compare" (see serving_mode)."""
        return serving_mode(task, self.reasoning_default)

    # ---- inputs ----------------------------------------------------------------------------

    def _template(self, task: str, reasoning: bool) -> str:
        key = (task, reasoning)
        if key not in self._templates:
            build = prompts.score_messages if task == "score" else prompts.compare_messages
            self._templates[key] = self.processor.apply_chat_template(
                build(reasoning), add_generation_prompt=True, tokenize=False
            )
        return self._templates[key]

    def preprocess(self, image: ImageSource) -> ImageSource:
        """The image made model-ready now, vision inputs included where the processor allows:
        the server does this per request, off the batch thread, so batches only run the model."""
        return self._encoder.preprocess(prepare_image(image, self.max_pixels))

    def _prepared(self, image: ImageSource) -> ImageSource:
        if isinstance(image, PreparedImage) and image.encoder == self._encoder.key:
            return image
        return prepare_image(image, self.max_pixels)

    def encode(self, task: str, reasoning: bool, rows: Sequence[Sequence[ImageSource]]) -> dict:
        """Left-padded model inputs: one prompt per row, each with that row's images."""
        prepared = [[self._prepared(img) for img in row] for row in rows]
        batch = self._encoder(self._template(task, reasoning), prepared)
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def answer_logits(self, inputs: dict) -> torch.Tensor:
        """Next-token logits (float32) at the answer position of each row."""
        return self.model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1, :].float()

    def _sampling(self, task, reasoning, max_new_tokens, temperature, top_p, top_k):
        if max_new_tokens is None:
            max_new_tokens = MAX_NEW_TOKENS[(task, reasoning)]
        return SamplingParams(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            eos_token_ids=self.eos_ids,
            suppress_token_ids=self.suppress_ids,
        )

    def _generator(self, seed: int | None) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed if seed is not None else int(np.random.SeedSequence().entropy % 2**63))
        return gen

    def _decode(self, sequences: list[list[int]]) -> list[str]:
        return self.processor.tokenizer.batch_decode(sequences, skip_special_tokens=True)

    # ---- the generation engine (app/quality/vllm_backend.py overrides these three) -----------

    def _answer_logits_at(self, task: str, rows, token_ids: list[int]) -> torch.Tensor:
        """Logits (or log-probabilities: softmax over them is the same) of `token_ids` at the
        answer position of the answer-only prompt, one row per prompt."""
        return self.answer_logits(self.encode(task, False, rows))[:, token_ids]

    def _sample(self, task, reasoning, rows, counts, params, gen) -> list[list[list[int]]]:
        """`counts[i]` sampled continuations (token ids) of prompt `i`."""
        return sample_continuations(
            self.model, self.encode(task, reasoning, rows), counts, params, gen
        )

    def _boxed_logits_at(
        self, task: str, rows, continuations: list[list[int]], token_ids: list[int]
    ) -> torch.Tensor:
        """Logits of `token_ids` right after row i's reasoning prompt plus `continuations[i]`
        (its answer so far, ending in "\\boxed{")."""
        inputs = self.encode(task, True, rows)
        pad = self.processor.tokenizer.pad_token_id
        return self.answer_logits(append_continuations(inputs, continuations, pad))[:, token_ids]

    # ---- scoring ---------------------------------------------------------------------------

    def score(
        self,
        images: Sequence[ImageSource],
        *,
        mode: ScoreMode | None = None,
        n: int = 8,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        reasoning: bool | None = None,
        return_texts: bool = False,
        seed: int | None = None,
        max_new_tokens: int | None = None,
    ) -> list[ScoreResult]:
        """Quality score per image; mode None (or "auto") is this model's serving_mode("score").

        fast: expected rating under the next-token distribution over "1".."5" (one forward,
        deterministic). It always uses the answer-only prompt: with reasoning the first token
        is "<think>", not the rating. deterministic: with reasoning, greedy reasoning up to the
        box, then the expected rating over the first answer digit after "\\boxed{" (cost: one
        greedy answer per image, `tokens` long); without reasoning the same as fast. sampled:
        n parsed responses; mean, std and valid count.
        """
        mode = self.serving_mode("score") if mode in (None, "auto") else mode
        if mode not in ("fast", "deterministic", "sampled"):
            raise ValueError(f"mode must be 'fast', 'deterministic' or 'sampled', not {mode!r}")
        reasoning = self.reasoning_default if reasoning is None else reasoning
        results: list[ScoreResult] = []
        gen = self._generator(seed)
        for start in range(0, len(images), self.batch_size):
            chunk = [[img] for img in images[start : start + self.batch_size]]
            if mode == "fast" or (mode == "deterministic" and not reasoning):
                results += self._score_fast(chunk)
            elif mode == "deterministic":
                results += self._score_boxed(chunk, max_new_tokens)
            else:
                params = self._sampling(
                    "score", reasoning, max_new_tokens, temperature, top_p, top_k
                )
                results += self._score_sampled(chunk, n, reasoning, params, gen, return_texts)
        return results

    def _score_fast(self, rows) -> list[ScoreResult]:
        return self._expected_ratings(self._answer_logits_at("score", rows, self.rating_ids))

    def _score_boxed(self, rows, max_new_tokens) -> list[ScoreResult]:
        prefixes, boxed, tokens = self._greedy_to_box("score", rows, max_new_tokens)
        logits = self._boxed_logits_at("score", rows, prefixes, self.rating_ids)
        results = self._expected_ratings(logits)
        for result, own_box, n_tokens in zip(results, boxed, tokens, strict=True):
            result.valid, result.tokens = int(own_box), n_tokens
        return results

    def _greedy_to_box(self, task, rows, max_new_tokens):
        """Each row's greedy reasoning answer cut just after its last "\\boxed{" (opened after
        the answer when it wrote none), whether it wrote one, and the tokens generated."""
        params = self._sampling(task, True, max_new_tokens, 0.0, 1.0, 0)
        samples = self._sample(task, True, rows, [1] * len(rows), params, self._generator(0))
        greedy = [seqs[0] for seqs in samples]
        prefixes, boxed = box_prefixes(self.processor.tokenizer, greedy)
        return prefixes, boxed, [len(seq) for seq in greedy]

    def _expected_ratings(self, logits: torch.Tensor) -> list[ScoreResult]:
        probs = torch.softmax(logits, dim=-1)
        values = torch.tensor(RATINGS, dtype=probs.dtype, device=probs.device)
        mean = probs @ values
        std = torch.sqrt((probs * (values[None, :] - mean[:, None]) ** 2).sum(-1))
        return [
            ScoreResult(score=float(m), std=float(s), valid=1, n=1, probs=p)
            for m, s, p in zip(mean.tolist(), std.tolist(), probs.tolist(), strict=True)
        ]

    def _score_sampled(self, rows, n, reasoning, params, gen, return_texts) -> list[ScoreResult]:
        samples = self._sample("score", reasoning, rows, [n] * len(rows), params, gen)
        results = []
        for seqs in samples:
            texts = self._decode(seqs)
            parsed = (parse_score(text, reasoning=reasoning) for text in texts)
            scores = [s for s in parsed if s is not None]
            results.append(
                ScoreResult(
                    score=float(np.mean(scores)) if scores else None,
                    std=float(np.std(scores)) if scores else 0.0,
                    valid=len(scores),
                    n=n,
                    texts=texts if return_texts else None,
                    tokens=sum(map(len, seqs)),
                )
            )
        return results

    # ---- comparing -------------------------------------------------------------------------

    def compare(
        self,
        pairs: Sequence[tuple[ImageSource, ImageSource]],
        *,
        mode: CompareMode | None = None,
        k: int = 32,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        reasoning: bool | None = None,
        seed: int | None = None,
        max_new_tokens: int | None = None,
    ) -> list[CompareResult]:
        """Probability that the first image of each pair is better; mode None (or "auto") is this
        model's serving_mode("compare").

        logits: P("0") vs P("1") at the answer position of the answer-only prompt, averaged
        over both orders (the K->inf limit of the vote). deterministic: with reasoning, the
        same at the box of each order's greedy reasoning answer; without, the same as logits.
        sampled: k votes, each in a randomly swapped order mapped back.
        """
        mode = self.serving_mode("compare") if mode in (None, "auto") else mode
        if mode not in ("logits", "deterministic", "sampled"):
            raise ValueError(f"mode must be 'logits', 'deterministic' or 'sampled', not {mode!r}")
        reasoning = self.reasoning_default if reasoning is None else reasoning
        gen = self._generator(seed)
        rng = np.random.default_rng(seed)
        results: list[CompareResult] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = list(pairs[start : start + self.batch_size])
            if mode == "logits" or (mode == "deterministic" and not reasoning):
                results += self._compare_logits(chunk)
            elif mode == "deterministic":
                results += self._compare_boxed(chunk, max_new_tokens)
            else:
                params = self._sampling(
                    "compare", reasoning, max_new_tokens, temperature, top_p, top_k
                )
                results += self._compare_sampled(chunk, k, reasoning, params, gen, rng)
        return results

    def _compare_logits(self, pairs) -> list[CompareResult]:
        rows = [order for a, b in pairs for order in ((a, b), (b, a))]
        logits = self._answer_logits_at("compare", rows, self.choice_ids)
        return [CompareResult(p, 0, 0, 0, "logits") for p in _p_first(logits)]

    def _compare_boxed(self, pairs, max_new_tokens) -> list[CompareResult]:
        rows = [order for a, b in pairs for order in ((a, b), (b, a))]
        prefixes, boxed, tokens = self._greedy_to_box("compare", rows, max_new_tokens)
        logits = self._boxed_logits_at("compare", rows, prefixes, self.choice_ids)
        # Orders whose greedy answer wrote no box of its own count as invalid (read anyway).
        return [
            CompareResult(
                p,
                0,
                0,
                2 - sum(boxed[2 * i : 2 * i + 2]),
                "deterministic",
                sum(tokens[2 * i : 2 * i + 2]),
            )
            for i, p in enumerate(_p_first(logits))
        ]

    def _compare_sampled(self, pairs, k, reasoning, params, gen, rng) -> list[CompareResult]:
        swapped = rng.random((len(pairs), k)) < 0.5  # each vote's order, drawn up front
        rows, counts, owners = [], [], []
        for i, (a, b) in enumerate(pairs):
            n_swapped = int(swapped[i].sum())
            for order, count, is_swapped in (((a, b), k - n_swapped, 0), ((b, a), n_swapped, 1)):
                if count:
                    rows.append(order)
                    counts.append(count)
                    owners.append((i, is_swapped))
        samples = self._sample("compare", reasoning, rows, counts, params, gen)
        tally = np.zeros((len(pairs), 3), dtype=int)  # votes for a, votes for b, invalid
        generated = [0] * len(pairs)
        for (i, is_swapped), seqs in zip(owners, samples, strict=True):
            generated[i] += sum(map(len, seqs))
            for text in self._decode(seqs):
                choice = parse_choice(text, reasoning=reasoning)
                if choice is None:
                    tally[i, 2] += 1
                else:
                    tally[i, abs(choice - is_swapped)] += 1  # 0: a, 1: b
        return [
            CompareResult(
                p_first=float(a / (a + b)) if a + b else 0.5,
                votes_a=int(a),
                votes_b=int(b),
                invalid=int(bad),
                mode="sampled",
                tokens=n_tokens,
            )
            for (a, b, bad), n_tokens in zip(tally, generated, strict=True)
        ]


def _p_first(logits: torch.Tensor) -> list[float]:
    """P(first image better) from ("0", "1") logits of each pair's two orders, (a, b) then
    (b, a): "0" in the first order and "1" in the second both mean a is better."""
    p_zero = torch.softmax(logits, dim=-1)[:, 0].view(-1, 2)
    return (0.5 * (p_zero[:, 0] + (1.0 - p_zero[:, 1]))).tolist()
