"""The vLLM engine process behind EVOQ_GENERATION_BACKEND=vllm (run by .venv-vllm's python).

It imports nothing of the project (vLLM pins another transformers), only vllm and PIL. It reads
one JSON request per line on stdin and answers one JSON line on its protocol stream (the real
stdout; vLLM's own logs go to stderr):

    request:  {"prompts": [{"text": str, "images": [png path, ...], "n": int, "seed": int}],
               "max_tokens": int, "temperature": float, "top_p": float, "top_k": int,
               "stop_token_ids": [int], "logprob_token_ids": [int] | null}
    answer:   {"outputs": [{"samples": [[token id, ...], ...],
                            "logprobs": {token id: logprob} | null}]}  or  {"error": str}

`logprob_token_ids`: the exact log-probabilities of these tokens at the first generated
position (not top-k), for the logits vote and the fast score.

    python app/quality/vllm_engine.py MODEL_DIR [MAX_MODEL_LEN [GPU_MEMORY_SHARE]]

On CUDA the engine runs the checkpoint's dtype (an fp32 checkpoint in bf16) with
GPU_MEMORY_SHARE of the device (vLLM's gpu_memory_utilization); on CPU it runs fp32 and its
KV cache is sized by VLLM_CPU_KVCACHE_SPACE.
"""

from __future__ import annotations

import json
import os
import sys


def engine_dtype(checkpoint_dtype: str | None, cuda: bool, bf16_supported: bool = True) -> str:
    """The dtype vLLM runs a checkpoint in: fp32 on CPU; on CUDA its 16-bit dtype, or bf16
    for an fp32 checkpoint (fp16 where the device has no bf16)."""
    if not cuda:
        return "float32"
    if checkpoint_dtype in ("bfloat16", "float16"):
        return checkpoint_dtype if bf16_supported or checkpoint_dtype == "float16" else "float16"
    return "bfloat16" if bf16_supported else "float16"


def checkpoint_dtype(model_dir: str) -> str | None:
    """The dtype config.json names (transformers 5 writes `dtype`, older ones `torch_dtype`)."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        config = json.load(fh)
    for section in (config, config.get("text_config") or {}):
        for key in ("dtype", "torch_dtype"):
            if isinstance(section.get(key), str):
                return section[key]
    return None


def engine_options(model_dir: str, max_model_len: int, gpu_share: float, cuda: bool) -> dict:
    """LLM(...) keyword arguments for this checkpoint on this device."""
    options = {
        "model": model_dir,
        "dtype": engine_dtype(checkpoint_dtype(model_dir), cuda),
        "max_model_len": max_model_len,
        "max_num_seqs": 64,
        "limit_mm_per_prompt": {"image": 2, "video": 0},
        "enforce_eager": not cuda,
        "seed": 0,
        # A prompt split across scheduler steps makes vLLM 0.32 rewind a seeded request's
        # generator, which the CPU generator cannot do (EngineDeadError): keep prompts whole.
        "enable_chunked_prefill": False,
    }
    if cuda:
        options["gpu_memory_utilization"] = gpu_share
    return options


def _protocol_stream():
    # vLLM logs to stdout: keep the real stdout for answers and send everything else to stderr.
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return stream


def _answer(llm, request: dict) -> dict:
    from PIL import Image
    from vllm import SamplingParams

    inputs, params = [], []
    for prompt in request["prompts"]:
        images = []
        for path in prompt["images"]:
            with Image.open(path) as img:
                images.append(img.convert("RGB"))
        inputs.append({"prompt": prompt["text"], "multi_modal_data": {"image": images}})
        params.append(
            SamplingParams(
                n=prompt["n"],
                seed=prompt["seed"],
                max_tokens=request["max_tokens"],
                temperature=request["temperature"],
                top_p=request["top_p"],
                top_k=request["top_k"] or 0,
                stop_token_ids=request["stop_token_ids"],
                logprob_token_ids=request["logprob_token_ids"],
                detokenize=False,
            )
        )
    outputs = []
    for result in llm.generate(inputs, params, use_tqdm=False):
        logprobs = None
        if request["logprob_token_ids"]:
            first = result.outputs[0].logprobs[0]
            logprobs = {str(t): first[t].logprob for t in request["logprob_token_ids"]}
        outputs.append(
            {"samples": [list(c.token_ids) for c in result.outputs], "logprobs": logprobs}
        )
    return {"outputs": outputs}


def main() -> None:
    stream = _protocol_stream()
    import torch
    from vllm import LLM

    model_dir = sys.argv[1]
    max_model_len = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
    gpu_share = float(sys.argv[3]) if len(sys.argv) > 3 else 0.85
    cuda = torch.cuda.is_available()
    options = engine_options(model_dir, max_model_len, gpu_share, cuda)
    if cuda and options["dtype"] == "bfloat16" and not torch.cuda.is_bf16_supported():
        options["dtype"] = "float16"
    llm = LLM(**options)
    stream.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = _answer(llm, json.loads(line))
        except Exception as exc:  # the parent turns this into an exception of its own
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        stream.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
