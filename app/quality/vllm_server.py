"""GRPO rollouts through a vLLM server: TRL's server mode, for a node of several GPUs (training
on some, `vllm serve` on others), with the faults of TRL 1.16 + vLLM 0.32 this project owns
(each guarded by tests/quality/test_vllm_server.py, which runs a real server on vLLM-CPU):

1. Image prompts crash: vLLM 0.32's `/inference/v1/generate` returns log-probs as
   `{"token_id": ...}` where TRL 1.16 reads `"token"` (`KeyError: 'token'`). `parse_logprobs`
   reads both.
2. After a weight sync the server keeps what its vision encoder computed for images it has
   seen: vLLM's `finish_weight_update` resets neither the encoder cache nor the multimodal
   cache, so a re-seen image is encoded with the old weights (and after a reload from disk the
   scheduler still counts on entries the runner dropped: `Encoder cache miss`). Every sync
   resets both.
3. No CUDA, no sync: TRL's weight transfer runs on NCCL and refuses a CPU trainer. Without
   CUDA the trainer writes its weights where the server can read them and the server reloads
   them through a worker extension (app/quality/vllm_server_worker.py) that re-processes tied
   LM heads, as the colocate sync does.
Also as in colocate: vision tokens get `logit_bias` -100. Before training, the server is checked
for what the rollouts need (context length, processed log-probs, a way to take the weights),
and a refusal names the flags to restart it with (`serve_command`).

Imports only the standard library at import time; torch, trl and safetensors when used.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.quality.vllm_rollouts import RolloutLog, vision_logit_bias
from app.quality.vllm_server_worker import EXTENSION

_STOCK_PARSE: Any = None


def sync_mode(device_type: str) -> str:
    """How the trainer's weights reach the server: `nccl` (TRL's weight transfer) from a CUDA
    trainer, `disk` (a shared directory and a worker extension) otherwise."""
    return "nccl" if device_type == "cuda" else "disk"


def serve_command(model: str, context_len: int, sync: str, port: int = 8000) -> str:
    """The command that starts a vLLM server these rollouts can use (README, tests)."""
    take_weights = (
        """--weight-transfer-config '{"backend": "nccl"}'"""
        if sync == "nccl"
        else f"--worker-extension-cls {EXTENSION}"
    )
    return (
        f"VLLM_SERVER_DEV_MODE=1 python -m vllm.entrypoints.openai.api_server --model {model} "
        f"--port {port} --max-model-len {context_len} --enable-scale-out "
        f"--logprobs-mode processed_logprobs --max-logprobs -1 {take_weights}"
    )


def server_problems(info: dict[str, Any], context_len: int, sync: str) -> list[str]:
    """What a server (its `/server_info` config) lacks for these rollouts; empty when none."""
    model = info.get("model_config") or {}
    problems = []
    if (model.get("max_model_len") or 0) < context_len:
        problems.append(
            f"its context is {model.get('max_model_len')} tokens, the rollouts need "
            f"{context_len} (--max-model-len {context_len})"
        )
    if model.get("logprobs_mode") != "processed_logprobs":
        problems.append(
            f"it returns {model.get('logprobs_mode')}, TRL's importance sampling needs "
            "processed log-probs (--logprobs-mode processed_logprobs)"
        )
    if sync == "nccl" and info.get("weight_transfer_config") is None:
        problems.append(
            """it cannot take weights (--weight-transfer-config '{"backend": "nccl"}')"""
        )
    extension = (info.get("parallel_config") or {}).get("worker_extension_cls")
    if sync == "disk" and extension != EXTENSION:
        problems.append(
            f"a trainer without CUDA syncs weights through a worker extension "
            f"(--worker-extension-cls {EXTENSION}, the project on the server's PYTHONPATH)"
        )
    return problems


def check_server(client: Any, context_len: int, sync: str) -> None:
    """Raise, naming the flags to restart it with, unless the server can take these rollouts."""
    problems = server_problems(client.get_server_info(), context_len, sync)
    if problems:
        raise RuntimeError(
            f"The vLLM server at {client.base_url} cannot serve these GRPO rollouts: "
            + "; ".join(problems)
            + f". Start it as: {serve_command('MODEL', context_len, sync)}"
        )


def _with_token(entry: dict[str, Any]) -> dict[str, Any]:
    if "token" in entry or "token_id" not in entry:
        return entry
    tops = [_with_token(top) for top in entry.get("top_logprobs") or []]
    return {**entry, "token": f"token_id:{entry['token_id']}", "top_logprobs": tops}


def parse_logprobs(choices_logprobs: list[dict | None]) -> tuple[list | None, list | None]:
    """TRL's `parse_logprobs`, reading vLLM 0.32's `token_id` entries as well as `token`."""
    fixed = []
    for logprobs in choices_logprobs:
        if logprobs is not None and "content" in logprobs:
            logprobs = {**logprobs, "content": [_with_token(e) for e in logprobs["content"]]}
        fixed.append(logprobs)
    return _STOCK_PARSE(fixed)


def fix_parse_logprobs() -> None:
    """Make TRL's client read vLLM 0.32's log-probs (fault 1); idempotent."""
    global _STOCK_PARSE
    from trl.generation import vllm_client

    if _STOCK_PARSE is None:
        _STOCK_PARSE = vllm_client.parse_logprobs
    vllm_client.parse_logprobs = parse_logprobs


@contextlib.contextmanager
def without_communicator(sync: str) -> Iterator[None]:
    """While a trainer is built: TRL's NCCL rendezvous is skipped where weights go by disk."""
    from trl.generation.vllm_client import VLLMClient

    original = VLLMClient.init_communicator
    if sync == "disk":
        VLLMClient.init_communicator = lambda self, device=0: None
    try:
        yield
    finally:
        VLLMClient.init_communicator = original


def reset_caches(client: Any) -> None:
    """Drop the server's prefix, encoder and multimodal caches (after a weight sync)."""
    for route in ("reset_prefix_cache", "reset_encoder_cache", "reset_mm_cache"):
        response = client.session.post(f"{client.base_url}/{route}")
        if response.status_code != 200:
            raise RuntimeError(f"vLLM server /{route}: {response.status_code} {response.text}")


def sync_via_disk(generation: Any, sync_dir: Path) -> None:
    """Write the training weights to `sync_dir` and have the server reload them (fault 3). Every
    process walks the parameters (ZeRO-3 gathers them); the main one writes and asks."""
    from safetensors.torch import save_file

    main = generation.accelerator.is_main_process
    tensors = {}
    for name, param in generation._iter_named_params():
        if main:
            tensors[name] = param.detach().to("cpu", copy=True).contiguous()
    if not main:
        return
    sync_dir.mkdir(parents=True, exist_ok=True)
    # vLLM's loader reads every *.safetensors there: the partial file is named otherwise.
    partial = sync_dir / ".model.safetensors.partial"
    save_file(tensors, str(partial))
    os.replace(partial, sync_dir / "model.safetensors")
    client = generation.vllm_client
    response = client.session.post(
        f"{client.base_url}/collective_rpc",
        json={"method": "evoq_reload_weights", "kwargs": {"path": str(sync_dir)}},
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"vLLM server could not reload the weights from {sync_dir}: {response.status_code} "
            f"{response.text[:500]} (is it started with --worker-extension-cls {EXTENSION} and "
            "can it read that directory?)"
        )


def install_server(trainer: Any, context_len: int, sync_dir: Path) -> RolloutLog:
    """Fix a GRPOTrainer built with `use_vllm=True, vllm_mode="server"` (module docstring)
    and check its server; what the rollouts saw is logged in the result."""
    generation = trainer.vllm_generation
    processor = trainer.processing_class
    tokenizer = getattr(processor, "tokenizer", processor)
    sync = sync_mode(trainer.accelerator.device.type)
    main = trainer.accelerator.is_main_process
    log = RolloutLog()
    fix_parse_logprobs()
    generation.generation_kwargs = {
        **(generation.generation_kwargs or {}),
        "logit_bias": vision_logit_bias(tokenizer),
    }
    stock_sync = generation.sync_weights

    def sync_weights() -> None:
        start = time.perf_counter()
        if sync == "disk":
            sync_via_disk(generation, sync_dir)
        else:
            stock_sync()
        if main:
            reset_caches(generation.vllm_client)
        log.sync_seconds.append(time.perf_counter() - start)

    generation.sync_weights = sync_weights
    if main:
        client = generation.vllm_client
        check_server(client, context_len, sync)
        client_generate = client.generate

        def generate(prompts: Any, features: Any = None, **kwargs: Any) -> Any:
            log.logit_bias.append((kwargs.get("generation_kwargs") or {}).get("logit_bias"))
            result = client_generate(prompts, features=features, **kwargs)
            log.completions.extend(list(ids) for ids in result["completion_ids"])
            return result

        client.generate = generate
    return log


def trl_server_args(url: str, context_len: int, timeout: float = 240.0) -> dict[str, Any]:
    """GRPOConfig arguments for rollouts through the vLLM server at `url`."""
    return {
        "use_vllm": True,
        "vllm_mode": "server",
        "vllm_server_base_url": url.rstrip("/"),
        "vllm_server_timeout": timeout,
        "vllm_max_model_length": context_len,
    }
