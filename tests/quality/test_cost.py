import pytest
from typer.testing import CliRunner

from app.cli import app
from app.quality.cost import ROLLOUT_TOKENS, VOTE_TOKENS, CostAssumptions, estimate_round
from app.quality.cost_memory import (
    MemoryAssumptions,
    activation_bytes,
    estimate_memory,
    format_memory,
    layer_activation_elements,
    memory_table,
)
from app.quality.cost_plan import plan_stages


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
        ("--vote-tokens", "0"),
        ("--rollout-tokens", "-5"),
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


HAND = CostAssumptions(
    vote_prompt_tokens=10,
    vote_answer_tokens=100,
    score_prompt_tokens=20,
    score_answer_tokens=50,
    gpu_peak_flops=1e12,
    mfu_prefill=1.0,
    mfu_decode=0.5,
    mfu_decode_hf=0.1,
    mfu_train=1.0,
    sync_bytes_per_s=1e9,
    pairs_per_step=30,
    holdout_fraction=0.1,
)


def _hand(backend: str) -> dict:
    stages = estimate_round(
        model_params=1e9,
        gpus=2,
        pairs=1000,
        votes=8,
        samples=4,
        assumptions=CostAssumptions(**{**HAND.__dict__, "backend": backend}),
    )
    return {s.stage: s.parts for s in stages}


def test_reasoning_lengths_and_backend_by_hand():
    # 2 GPUs x 1e12 FLOP/s; a token costs 2e9 FLOPs forward.
    hf, vllm = _hand("hf"), _hand("vllm")
    # Votes decode 1000 pairs x K=8 x 100 tokens: hf at 0.1 of peak, vLLM at 0.5.
    assert hf["vote"]["decode"] == pytest.approx(1000 * 8 * 100 * 2e9 / (2e12 * 0.1))  # 8000 s
    assert vllm["vote"]["decode"] == pytest.approx(1600)
    assert hf["vote"]["prefill"] == vllm["vote"]["prefill"] == pytest.approx(20)  # 2 orders
    # 1800 training images x G=4 x 50 tokens decoded; updates read prompt + completion at 8N.
    assert hf["train"]["rollout decode"] == pytest.approx(1800 * 4 * 50 * 2e9 / 2e11)  # 3600
    assert vllm["train"]["rollout decode"] == pytest.approx(720)
    assert hf["train"]["policy update"] == pytest.approx(1800 * 4 * 70 * 8e9 / 2e12)  # 2016
    # vLLM syncs 2 bytes per parameter after each of 900 / 30 = 30 steps, at 1e9 bytes/s.
    assert vllm["train"]["weight sync"] == pytest.approx(30 * 2e9 / 1e9)
    assert "weight sync" not in hf["train"]
    with pytest.raises(ValueError):
        _hand("tgi")


def test_default_lengths_are_reasoning_lengths_not_answer_only():
    a = CostAssumptions()
    assert a.vote_answer_tokens == VOTE_TOKENS and a.score_answer_tokens == ROLLOUT_TOKENS
    assert min(VOTE_TOKENS, ROLLOUT_TOKENS) >= 50  # an answer-only vote is ~8 tokens


def test_stage_memory_by_hand():
    cost = CostAssumptions(
        **{**HAND.__dict__, "vote_prompt_tokens": 5, "vote_answer_tokens": 7, "pairs_per_step": 3}
    )

    def plans(backend: str, gpus: int) -> dict:
        rows = plan_stages(
            model_params=1000,
            gpus=gpus,
            pairs=100,
            votes=3,
            samples=2,
            vote_mode="sampled",
            micro_batch=2,
            vote_batch=2,
            cost=CostAssumptions(**{**cost.__dict__, "backend": backend}),
            memory=SMALL,
        )
        return {p.stage: p for p in rows}

    hf = plans("hf", 4)
    # KV: 2 x 0.5 x 10 x 2 layers x 2 bytes = 40 bytes per token. Votes: 2 pairs x K=3 rows of
    # 5 + 7 tokens beside 2000 bytes of bf16 weights.
    assert hf["vote"].memory == {"weights bf16": 2000, "KV cache": 6 * 12 * 40}
    # Evaluation: parent and candidate, 2 x 2 orders of 5 + 1 tokens each.
    assert hf["evaluate"].memory == {"weights bf16": 4000, "KV cache": 2 * 4 * 6 * 40}
    # Training (ZeRO-3, checkpointed): states 7000 as in test_memory_parts_by_hand; a GPU
    # samples ceil(2 x 3 x 2 / 4) = 3 rows of 3 + 5 tokens (960) or updates (see below).
    update = 2 * 10 * 2 * 16 + 160 * 2 * 16 + 4128  # inputs + one layer + logp head: 9888
    assert hf["train"].memory == {"training states": 7000, "update or sampling": update}
    assert hf["train"].memory_total == 16888
    vllm = plans("vllm", 4)  # the engine's bf16 weights and its KV cache of those 3 rows
    assert vllm["train"].memory["vLLM engine"] == 2000 + 3 * 8 * 40
    assert vllm["vote"].memory == hf["vote"].memory
    # One GPU: 20 bytes per parameter, nothing sharded or gathered.
    assert plans("hf", 1)["train"].memory["training states"] == 20 * 1000


def test_plan_prints_time_and_memory_per_stage_for_1_and_8_gpus():
    args = ["plan", "--gpus", "8", "--vote-tokens", "300", "--rollout-tokens", "400"]
    hf = CliRunner().invoke(app, args)
    assert hf.exit_code == 0, hf.output
    assert "1 GPU time" in hf.output and "8 GPU GB" in hf.output
    assert "votes of 300 tokens" in hf.output and "rollouts of 400 tokens" in hf.output
    assert "    weight sync" not in hf.output  # a part of the train stage
    vllm = CliRunner().invoke(app, [*args, "--backend", "vllm"])
    assert vllm.exit_code == 0, vllm.output
    assert "    weight sync" in vllm.output and "vLLM engine" in vllm.output
    bad = CliRunner().invoke(app, ["plan", "--backend", "tgi"])
    assert bad.exit_code == 2 and "--backend must be one of hf, vllm" in bad.output
