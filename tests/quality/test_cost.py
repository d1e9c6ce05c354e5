import pytest
from typer.testing import CliRunner

from app.cli import app
from app.quality.cost import CostAssumptions, estimate_round


def _stages(**overrides):
    args = dict(model_params=1e9, gpus=1, pairs=1000, votes=8, samples=4, vote_mode="sampled")
    return {s.stage: s for s in estimate_round(**{**args, **overrides})}


def test_logits_votes_cost_two_prefills_per_pair_whatever_k():
    a = CostAssumptions()
    vote = _stages(vote_mode="logits", votes=32)["vote"]
    expected = 1000 * 2 * a.vote_prompt_tokens * 2e9 / (a.gpu_peak_flops * a.mfu_prefill)
    assert vote.seconds == pytest.approx(expected)
    assert _stages(vote_mode="logits", votes=1)["vote"].seconds == pytest.approx(expected)


def test_cost_grows_linearly_in_pairs_and_k_and_shrinks_with_gpus():
    base = _stages()
    assert _stages(pairs=2000)["vote"].seconds == pytest.approx(2 * base["vote"].seconds)
    assert _stages(pairs=2000)["train"].seconds == pytest.approx(2 * base["train"].seconds)
    decode = base["vote"].parts["decode"]
    assert _stages(votes=16)["vote"].parts["decode"] == pytest.approx(2 * decode)
    assert _stages(gpus=8)["train"].seconds == pytest.approx(base["train"].seconds / 8)


def test_without_prefix_sharing_every_sample_pays_its_prefill():
    shared = _stages()["train"].parts["rollout prefill"]
    alone = estimate_round(
        model_params=1e9,
        gpus=1,
        pairs=1000,
        votes=8,
        samples=4,
        assumptions=CostAssumptions(prefix_sharing=False),
    )[1].parts["rollout prefill"]
    assert alone == pytest.approx(4 * shared)


def test_plan_command_prints_an_estimate_with_its_assumptions():
    result = CliRunner().invoke(
        app, ["plan", "--model-params", "7e9", "--gpus", "8", "--pairs", "20000"]
    )
    assert result.exit_code == 0, result.output
    assert "ESTIMATE" in result.output and "mfu_decode" in result.output
    for stage in ("vote", "train", "evaluate", "total"):
        assert stage in result.output
    bad = CliRunner().invoke(app, ["plan", "--vote-mode", "nope"])
    assert bad.exit_code != 0
