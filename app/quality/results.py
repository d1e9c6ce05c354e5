"""What a model is asked and answers: the modes, the answer-token budgets, the result types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RATINGS = (1, 2, 3, 4, 5)
# With reasoning the answer follows a free-form <think> block; without it the answer is the
# first token, so answer-only votes need one token and answer-only scores a few ("3.75").
MAX_NEW_TOKENS = {("score", True): 1024, ("score", False): 8, ("compare", True): 1024}
MAX_NEW_TOKENS[("compare", False)] = 1

ScoreMode = Literal["auto", "fast", "deterministic", "sampled"]
CompareMode = Literal["auto", "logits", "deterministic", "sampled"]


def serving_mode(task: str, reasoning: bool) -> str:
    """How a model is asked unless a caller says otherwise: the API's default, the gate's
    holdout and probe measurements and the anchor scores all use it. A reasoning model answers
    after its monologue, with the prompt GRPO trains ("deterministic": greedy reasoning, then
    the answer distribution at the box); an answer-only model from its first token."""
    if reasoning:
        return "deterministic"
    return "fast" if task == "score" else "logits"


class ModelClosed(RuntimeError):
    """The model was closed (a serving slot swapped it out); take the slot's current one."""


@dataclass
class ScoreResult:
    """Quality of one image: score in [1, 5] (None when no sample parsed), its spread, counts."""

    score: float | None
    std: float
    valid: int
    n: int
    texts: list[str] | None = None
    tokens: int = 0  # tokens generated for this image: the mode's cost beyond one prefill
    # fast and deterministic: P("1".."5") at the answer position (how the gate measures change)
    probs: list[float] | None = None


@dataclass
class CompareResult:
    """p_first: probability that the first image of the pair has the better quality."""

    p_first: float
    votes_a: int
    votes_b: int
    invalid: int
    mode: str
    tokens: int = 0  # tokens generated for this pair (both orders, every vote)
