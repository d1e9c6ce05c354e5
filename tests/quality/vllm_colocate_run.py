"""Two GRPO steps with TRL colocate vLLM rollouts (app/quality/vllm_rollouts.install) on a tiny
model; run by .venv-vllm's python from tests/quality/test_vllm_rollouts.py. Writes one JSON
object of what it saw to OUT.

    python tests/quality/vllm_colocate_run.py MODEL_DIR OUT_JSON [--stock-sync] [--stale-head] [--no-collapse]
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from PIL import Image


def _dataset(n_prompts: int):  # noqa: ANN202
    from datasets import Dataset

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_prompts):
        pixels = (rng.random((56, 56, 3)) * 255).astype("uint8")
        rows.append({
            "prompt": [{"role": "user", "content": [
                {"type": "image"}, {"type": "text", "text": f"Rate this image {i}."}]}],
            "image": Image.fromarray(pixels),
        })  # fmt: skip
    return Dataset.from_list(rows)


def grpo_args(out: str, learning_rate: float, completion_len: int, **vllm: object) -> dict:
    """GRPOConfig arguments of a two-step CPU run on four image prompts (both vLLM runs)."""
    return {
        "output_dir": out + ".trainer", "use_cpu": True, **vllm,
        "model_init_kwargs": {"dtype": "float32"}, "per_device_train_batch_size": 4,
        "num_generations": 2, "max_completion_length": completion_len, "max_steps": 2,
        "learning_rate": learning_rate, "logging_steps": 1, "report_to": "none",
        "save_strategy": "no", "disable_tqdm": True, "shuffle_dataset": False, "seed": 0,
        "temperature": 1.0, "beta": 0.0, "remove_unused_columns": False,
    }  # fmt: skip


def run_summary(trainer, log, processor, model_dir: str, out: str) -> dict:  # noqa: ANN001
    """What both vLLM runs report: vision tokens and biases seen, TRL's sampling gap per step,
    and how many tensors the trained model changed (it is saved to OUT.model)."""
    from safetensors.torch import load_file

    from app.quality.vllm_rollouts import vision_token_ids

    trainer.save_model(out + ".model")
    parent = load_file(f"{model_dir}/model.safetensors")
    child = load_file(f"{out}.model/model.safetensors")
    vision = set(vision_token_ids(processor.tokenizer))
    history = [e for e in trainer.state.log_history if "step_time" in e]
    return {
        "vision_ids": sorted(vision),
        "vision_sampled": sum(t in vision for c in log.completions for t in c),
        "completions": len(log.completions),
        "logit_bias": [{str(k): v for k, v in (bias or {}).items()} for bias in log.logit_bias],
        "trl_logp_difference_max": [
            e.get("sampling/sampling_logp_difference/max") for e in history
        ],
        "tensors_changed": sum(not torch.equal(parent[k], child[k]) for k in parent if k in child),
        "tensors": len(parent),
        "step_time_s": [e["step_time"] for e in history],
        "sync_s": log.sync_seconds,
    }


def _reward(completions, **kwargs):  # noqa: ANN001, ANN003, ANN202
    # Varies across a group's samples, so the advantages (and the update) are not zero.
    return [float(len(str(c)) % 7) for c in completions]


def _hf_logps(model, processor, prompt_ids, image, completion, suppressed=()) -> list[float]:  # noqa: ANN001
    """HF's log-probabilities of `completion` after the (expanded) prompt ids and its image;
    `suppressed` tokens get vLLM's logit_bias of -100 first (processed log-probs)."""
    vision = processor.image_processor(images=[image], return_tensors="pt")
    ids = torch.tensor([list(prompt_ids) + list(completion)])
    with torch.no_grad():
        logits = model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            pixel_values=vision["pixel_values"],
            image_grid_thw=vision["image_grid_thw"],
        ).logits[0]
    logits = logits.float()
    logits[:, list(suppressed)] -= 100.0
    logps = torch.log_softmax(logits, -1)
    start = len(prompt_ids)
    return [logps[start - 1 + i, t].item() for i, t in enumerate(completion)]


def main() -> None:
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from app.quality.vllm_rollouts import (
        check_versions,
        explicit_dtype,
        install,
    )
    from app.quality.vllm_sizing import image_tokens, max_model_len

    model_dir, out = sys.argv[1], sys.argv[2]
    check_versions()
    if "--stale-head" in sys.argv:  # the tied-head fault, to show the test catches it
        from app.quality import vllm_rollouts

        vllm_rollouts.reprocess_lm_heads = lambda model: 0
    processor = AutoProcessor.from_pretrained(model_dir)
    completion_len = 16
    config = GRPOConfig(
        # Large, so one step moves the weights far enough that a stale engine shows.
        **grpo_args(
            out,
            0.05,
            completion_len,
            use_vllm=True,
            vllm_mode="colocate",
            vllm_gpu_memory_utilization=0.3,
            vllm_max_model_length=max_model_len(64, 1, image_tokens(56 * 56), completion_len),
        )  # fmt: skip
    )
    start = time.perf_counter()
    with explicit_dtype("float32", eager=True):  # no compile: starts faster
        trainer = GRPOTrainer(
            model=model_dir,
            reward_funcs=[_reward],
            args=config,
            train_dataset=_dataset(4),
            processing_class=processor,
        )
    engine_start = time.perf_counter() - start
    stock_sync = trainer.vllm_generation.sync_weights
    if "--no-collapse" in sys.argv:
        from app.quality import vllm_rollouts

        vllm_rollouts.collapse_image_pads = lambda ids, pad_id: list(ids)
    log = install(trainer, strict=False)
    if "--stock-sync" in sys.argv:
        trainer.vllm_generation.sync_weights = stock_sync
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start

    # After training: sync, sample through vLLM, and score the same tokens with HF.
    generation = trainer.vllm_generation
    generation.sync_weights()
    image = _dataset(1)[0]["image"]
    messages = _dataset(1)[0]["prompt"]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = processor(text=[text], images=[image], return_tensors="pt")["input_ids"][0]
    prompt_ids = prompt_ids.tolist()
    _, completions, logprobs, _ = generation.generate([prompt_ids] * 2, [[image]] * 2, 1)
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    gaps = []
    for completion, sampled in zip(completions, logprobs, strict=True):
        hf = _hf_logps(model, processor, prompt_ids, image, completion)
        gaps.extend(abs(a - b[0]) for a, b in zip(hf, sampled, strict=True))

    result = {
        **run_summary(trainer, log, processor, model_dir, out),
        "prompts_equal": log.prompts_equal,
        "logp_gap_max": max(gaps),
        "logp_gap_mean": float(np.mean(gaps)),
        "engine_start_s": engine_start,
        "train_s": train_s,
    }
    with open(out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
