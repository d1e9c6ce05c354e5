"""The paper's fidelity reward (Eq. 2-3) for GRPO on pairs, and its TRL reward callables.

For image x_i with G sampled scores q_k(x_i), mean mu and variance var over its *valid* scores:

    p_k(x_i, x_j) = Phi((q_k(x_i) - mu(x_j)) / sqrt(var(x_i) + var(x_j) + gamma))
    r_k(x_i)      = mean over partners j of sqrt(p*_ij * p_k) + sqrt((1 - p*_ij) * (1 - p_k))

with p*_ji = 1 - p*_ij. Variance is the unbiased sample variance (ddof=1), as `torch.var` in
VisualQuality-R1, the paper's code base; a group with one valid score has variance 0.
Unparsable responses (None) get reward 0 and are left out of mu and var. A response whose
partners all lack a valid score has no comparison to make and also gets 0. A response to the
reasoning prompt parses only from its box (or <answer> tag): the reward trains the prompt that is
served, with the parse the gate and the votes use.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from app.quality.parsing import parse_score
from app.quality.prompts import REASONING_INSTRUCTION

__all__ = [
    "GAMMA",
    "FidelityReward",
    "GroupStats",
    "batch_fidelity_rewards",
    "completion_text",
    "fidelity",
    "fidelity_rewards",
    "format_reward",
    "parse_completions",
    "group_stats",
    "thurstone_probabilities",
]

GAMMA = 1e-6
Scores = Sequence[float | None]


@dataclass(frozen=True)
class GroupStats:
    """Mean and unbiased variance of a group's valid scores; mean is NaN when none is valid."""

    mean: float
    var: float
    n_valid: int


def group_stats(scores: Scores) -> GroupStats:
    """Mean and sample variance (ddof=1; 0 for a single score) over the non-None scores."""
    valid = np.array([s for s in scores if s is not None], dtype=float)
    if valid.size == 0:
        return GroupStats(math.nan, math.nan, 0)
    var = float(valid.var(ddof=1)) if valid.size > 1 else 0.0
    return GroupStats(float(valid.mean()), var, int(valid.size))


def thurstone_probabilities(
    scores_i: Scores, stats_i: GroupStats, stats_j: GroupStats, gamma: float = GAMMA
) -> np.ndarray:
    """p_k(x_i, x_j) for each of x_i's scores (Eq. 2); NaN where the score is None."""
    q = np.array([math.nan if s is None else s for s in scores_i], dtype=float)
    return ndtr((q - stats_j.mean) / math.sqrt(stats_i.var + stats_j.var + gamma))


def fidelity(p_star: float, p: np.ndarray) -> np.ndarray:
    """Fidelity between Bernoulli(p*) and Bernoulli(p), in [0, 1] (Eq. 3's summand)."""
    p = np.clip(p, 0.0, 1.0)
    return np.sqrt(p_star * p) + np.sqrt((1.0 - p_star) * (1.0 - p))


def batch_fidelity_rewards(
    groups: Sequence[Scores],
    comparisons: Sequence[tuple[int, int, float]],
    gamma: float = GAMMA,
) -> list[list[float]]:
    """Per-response rewards for groups of scores, given comparisons (i, j, p*_ij) between groups.

    Each group's reward is the mean of its fidelities over its partners that have at least one
    valid score; None scores get 0.
    """
    stats = [group_stats(g) for g in groups]
    totals = [np.zeros(len(g)) for g in groups]
    counts = [0] * len(groups)
    for i, j, p_star in comparisons:
        if not 0.0 <= p_star <= 1.0:
            raise ValueError(f"p* must be in [0, 1], got {p_star}")
        if stats[i].n_valid == 0 or stats[j].n_valid == 0:
            continue
        for me, other, target in ((i, j, p_star), (j, i, 1.0 - p_star)):
            p = thurstone_probabilities(groups[me], stats[me], stats[other], gamma)
            totals[me] += np.nan_to_num(fidelity(target, p), nan=0.0)
            counts[me] += 1
    return [
        (totals[g] / counts[g]).tolist() if counts[g] else [0.0] * len(groups[g])
        for g in range(len(groups))
    ]


def fidelity_rewards(
    scores_i: Scores, scores_j: Scores, p_star_ij: float, gamma: float = GAMMA
) -> tuple[list[float], list[float]]:
    """Rewards for the G responses of each image of one pair, p*_ij = P(x_i better than x_j)."""
    r_i, r_j = batch_fidelity_rewards([scores_i, scores_j], [(0, 1, p_star_ij)], gamma)
    return r_i, r_j


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a plain string or a conversational message list."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content", "")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(block.get("text", "") for block in content if block.get("type") == "text")
    return "".join(parts)


def _asks_for_reasoning(prompt: Any) -> bool:
    return prompt is not None and REASONING_INSTRUCTION in completion_text(prompt)


def parse_completions(
    completions: Sequence[Any],
    prompts: Sequence[Any] | None = None,
    reasoning: bool | None = None,
) -> list[float | None]:
    """Scores of TRL completions; strict (box or tag only) where the prompt asked for reasoning,
    read from each row's prompt when `reasoning` is None (a row without a prompt: lenient)."""
    if reasoning is None:
        strict = (
            [_asks_for_reasoning(p) for p in prompts] if prompts else [False] * len(completions)
        )
    else:
        strict = [reasoning] * len(completions)
    return [
        parse_score(completion_text(c), reasoning=r)
        for c, r in zip(completions, strict, strict=True)
    ]


def format_reward(
    completions: Sequence[Any], prompts: Sequence[Any] | None = None, **kwargs: Any
) -> list[float]:
    """TRL reward: 1 when a completion parses to a score (strictly, for the reasoning prompt)."""
    return [float(s is not None) for s in parse_completions(completions, prompts)]


class FidelityReward:
    """TRL reward callable for the score prompt on pair datasets.

    Expects dataset columns `pair_id`, `position` (0 = image a, 1 = image b) and `p_star`
    (P(a better than b), the same on both rows). Both rows of a pair must reach the same call;
    completions of one row form one group. Logs `parse_rate` through TRL's `log_metric`.
    `parse`: a custom parser; by default completions to the reasoning prompt (seen in TRL's
    `prompts`) parse strictly, from their box, and answer-only ones leniently.
    """

    __name__ = "fidelity"

    def __init__(
        self, parse: Callable[[str], float | None] | None = None, gamma: float = GAMMA
    ) -> None:
        self.parse = parse
        self.gamma = gamma

    def __call__(
        self,
        completions: Sequence[Any],
        pair_id: Sequence[Hashable],
        position: Sequence[int],
        p_star: Sequence[float],
        log_metric: Callable[[str, float], None] | None = None,
        prompts: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        if self.parse is None:
            scores = parse_completions(completions, prompts)
        else:
            scores = [self.parse(completion_text(c)) for c in completions]
        rows: dict[tuple[Hashable, int], list[int]] = defaultdict(list)
        label: dict[Hashable, float] = {}
        for index, (pid, pos, ps) in enumerate(zip(pair_id, position, p_star, strict=True)):
            rows[(pid, int(pos))].append(index)
            label[pid] = float(ps)
        keys = list(rows)
        slot = {key: n for n, key in enumerate(keys)}
        comparisons = []
        for pid, ps in label.items():
            if (pid, 0) not in slot or (pid, 1) not in slot:
                raise ValueError(
                    f"pair {pid!r} has only one image in this reward call; keep partners in "
                    "adjacent rows and an even number of rows per generation batch"
                )
            comparisons.append((slot[(pid, 0)], slot[(pid, 1)], ps))
        groups = [[scores[i] for i in rows[key]] for key in keys]
        group_rewards = batch_fidelity_rewards(groups, comparisons, self.gamma)
        rewards = [0.0] * len(completions)
        for key, values in zip(keys, group_rewards, strict=True):
            for index, value in zip(rows[key], values, strict=True):
                rewards[index] = value
        if log_metric is not None:
            log_metric("parse_rate", sum(s is not None for s in scores) / max(1, len(scores)))
        return rewards
