import pytest
from typer.testing import CliRunner

from app.cli import app
from app.quality.cost import (
    CostAssumptions,
    MemoryAssumptions,
    activation_bytes,
    estimate_memory,
    estimate_round,
    format_memory,
    layer_activation_elements,
    memory_table,
)


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


SMALL = MemoryAssumptions(
    hidden_size=10,
    intermediate_size=20,
    num_layers=2,
    kv_fraction=0.5,
    vocab_size=100,
    prompt_tokens=3,
    completion_tokens=5,
    logprob_tile=(4, 8),
)


def _memory(**overrides):
    args = dict(
        model_params=1000,
        gpus=4,
        zero3=True,
        micro_batch=2,
        gradient_checkpointing=False,
        sampled_rows=3,
        assumptions=SMALL,
    )
    return estimate_memory(**{**args, **overrides})


def test_memory_parts_by_hand():
    # A layer saves 7h + 2*kv*h + 4I = 70 + 10 + 80 = 160 elements per token, 2 bytes each;
    # a micro-batch of 2 rows of 3 + 5 tokens is 16 tokens.
    assert layer_activation_elements(SMALL) == 160
    assert activation_bytes(2, False, SMALL) == 2 * 160 * 2 * 16  # both layers: 10240
    assert activation_bytes(2, True, SMALL) == 2 * 10 * 2 * 16 + 160 * 2 * 16  # inputs + one
    zero3 = _memory()
    assert zero3.states == {  # 4, 4, 8 and 4 bytes per parameter over 4 GPUs; 1000 live bf16
        "weights": 1000,
        "grads": 1000,
        "AdamW": 2000,
        "reference": 1000,
        "ZeRO-3 live": 2000,
    }
    # One fp32 tile of min(4, 2*5) x 8 logits and the fp32 head gradient (100 x 10).
    assert zero3.update == {"autocast copy": 0, "activations": 10240, "logp head": 4128}
    assert zero3.sampling == {"sampling KV": 3 * 8 * (2 * 0.5 * 10 * 2 * 2)}  # 960
    assert zero3.total == 7000 + 14368
    ddp = _memory(zero3=False)  # every GPU holds everything, plus autocast's bf16 copies
    assert sum(ddp.states.values()) == 20000 and ddp.update["autocast copy"] == 2000
    assert ddp.total == 20000 + 2000 + 10240 + 4128
    assert _memory(zero3=False, gpus=1).total == ddp.total
    assert _memory(gpus=1).states["ZeRO-3 live"] == 0  # nothing to gather on one GPU
    assert _memory(reference_model=False).states["reference"] == 0
    # Sampling outweighs the update when a GPU samples many rows at once.
    assert _memory(sampled_rows=100).total == 7000 + 100 * 320
    with pytest.raises(ValueError):
        _memory(gpus=0)


def test_7b_fits_80_gb_only_sharded_and_checkpointed():
    rows = memory_table(model_params=8.29e9, micro_batch=16, completions_per_step=2048)
    fits = {(r.gpus, r.zero3, r.gradient_checkpointing) for r in rows if r.total <= 80e9}
    assert fits == {(8, True, True)}
    text = format_memory(rows, 16, MemoryAssumptions())
    assert "8 GPU ZeRO-3 ckpt" in text and "yes" in text and "reference_bytes" in text


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--gpus", "0"),
        ("--pairs", "0"),
        ("--votes", "-1"),
        ("--model-params", "0"),
        ("--micro-batch", "0"),
    ],
)
def test_plan_refuses_non_positive_input(option, value):
    result = CliRunner().invoke(app, ["plan", option, value])
    assert result.exit_code == 2, result.output
    assert f"{option} must be positive" in result.output
    assert isinstance(result.exception, SystemExit)  # a usage error, not ZeroDivisionError


def test_plan_prints_memory_per_gpu():
    result = CliRunner().invoke(app, ["plan", "--gpus", "4"])
    assert result.exit_code == 0, result.output
    assert "memory per GPU" in result.output
    for setup in ("1 GPU", "4 GPU ZeRO-3", "8 GPU ZeRO-3 ckpt"):
        assert setup in result.output
