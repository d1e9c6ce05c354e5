"""The GRPO reward parses completions to the reasoning prompt strictly (box or tag only)."""

from __future__ import annotations

import pytest

from app.quality import prompts
from app.quality.reward import FidelityReward, format_reward, parse_completions


def _prompt(reasoning: bool) -> list[dict]:
    return prompts.score_messages(reasoning)


def _completion(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


CUT_OFF = "<think>three people stand in soft light, maybe 4"


def test_reasoning_prompt_parses_only_boxes():
    completions = [_completion(CUT_OFF), _completion("<think>ok</think> \\boxed{3.5}")]
    reasoning = [_prompt(True)] * 2
    assert parse_completions(completions, reasoning) == [None, 3.5]
    assert format_reward(completions, prompts=reasoning) == [0.0, 1.0]


def test_answer_only_prompt_keeps_the_lenient_parse():
    completions = [_completion("4"), _completion(CUT_OFF)]
    assert parse_completions(completions, [_prompt(False)] * 2) == [4.0, 4.0]


def test_fidelity_reward_gives_a_cut_off_reasoning_answer_zero():
    texts = [CUT_OFF, "<think>a</think> \\boxed{4}", "<think>b</think> \\boxed{2}", "\\boxed{2.5}"]
    logged: dict[str, float] = {}
    rewards = FidelityReward()(
        prompts=[_prompt(True)] * 4,
        completions=[_completion(t) for t in texts],
        pair_id=[1, 1, 1, 1],
        position=[0, 0, 1, 1],
        p_star=[1.0] * 4,
        log_metric=logged.__setitem__,
    )
    assert rewards[0] == 0.0 and rewards[1] > 0.0
    assert logged["parse_rate"] == pytest.approx(3 / 4)
