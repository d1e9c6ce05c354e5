"""EVOQ_GENERATION_BACKEND=vllm: the same questions as QualityModel, answered by a vLLM engine.

vLLM runs in its own interpreter (.venv-vllm, made by scripts/setup-vllm: it pins another
transformers than the project's) as app/quality/vllm_engine.py, one process per checkpoint.
Prompts, images and the parsing and tallying of answers stay QualityModel's; only the engine
calls change: sampled votes and scores send one request per prompt with n = its sample count,
and logits votes and fast scores read the exact log-probabilities of the answer tokens
(vLLM's logprob_token_ids), not top-k; deterministic mode sends its greedy answer up to the
box back as prompt text and reads the same log-probabilities there. Not applied here: HF's suppression of vision tokens in
sampling (they never parse as an answer either way).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from app.quality.images import prepare_image
from app.quality.loading import load_bounded_processor, reasoning_default
from app.quality.model import MAX_NEW_TOKENS, ModelClosed, QualityModel
from app.quality.vllm_sizing import engine_share, image_tokens, max_model_len

ENGINE_SCRIPT = Path(__file__).with_name("vllm_engine.py")


class VLLMEngine:
    """A vLLM engine process speaking vllm_engine.py's JSON-lines protocol; thread-safe."""

    def __init__(
        self,
        model_dir: str,
        python: str | Path,
        max_model_len: int = 2048,
        kv_cache_gb: int = 1,
        gpu_share: float = 0.85,
    ) -> None:
        if not Path(python).exists():
            raise FileNotFoundError(f"{python} not found: run scripts/setup-vllm first")
        self.log = tempfile.NamedTemporaryFile(prefix="evoq-vllm-", suffix=".log", delete=False)  # noqa: SIM115
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb)}
        env.pop("PYTHONPATH", None)  # the engine imports only vllm, never this project
        self.proc = subprocess.Popen(
            [str(python), str(ENGINE_SCRIPT), model_dir, str(max_model_len), str(gpu_share)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        self._lock = threading.Lock()
        if not self.proc.stdout.readline():
            self.close()
            raise RuntimeError(f"vLLM engine did not start:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its answer."""
        with self._lock:
            if self.proc.stdin.closed:
                raise ModelClosed("this vLLM engine was closed")
            self.proc.stdin.write(json.dumps(payload) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"vLLM engine exited:\n{self._log_tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"vLLM engine: {answer['error']}")
        return answer

    def close(self) -> None:
        """Stop the engine process once the request in flight (if any) is answered."""
        with self._lock:
            if self.proc.stdin.closed:
                return
            self.proc.stdin.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


class VLLMQualityModel(QualityModel):
    """QualityModel whose answer logits and samples come from a VLLMEngine."""

    def __init__(self, base: QualityModel, engine: VLLMEngine) -> None:
        super().__init__(
            None,
            base.processor,
            source=base.source,
            device=torch.device("cpu"),
            max_pixels=base.max_pixels,
            reasoning_default=base.reasoning_default,
            batch_size=base.batch_size,
        )
        self.engine = engine

    def close(self) -> None:
        """Stop the engine process."""
        self.engine.close()

    def _request(self, task, reasoning, rows, counts, seeds, tails=None, **options) -> list[dict]:
        text = self._template(task, reasoning)
        tails = tails or [""] * len(rows)
        with tempfile.TemporaryDirectory(prefix="evoq-vllm-images-") as tmp:
            prompts = []
            for r, (row, n, seed) in enumerate(zip(rows, counts, seeds, strict=True)):
                paths = []
                for i, image in enumerate(row):
                    path = Path(tmp) / f"{r}-{i}.png"  # PNG: the engine sees the same pixels
                    prepare_image(image, self.max_pixels).save(path)
                    paths.append(str(path))
                prompts.append({"text": text + tails[r], "images": paths, "n": n, "seed": seed})
            return self.engine.request({"prompts": prompts, **options})["outputs"]

    def _answer_logits_at(self, task: str, rows, token_ids: list[int]) -> torch.Tensor:
        outputs = self._request(
            task,
            False,
            rows,
            [1] * len(rows),
            [0] * len(rows),
            max_tokens=1,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            stop_token_ids=[],
            logprob_token_ids=list(token_ids),
        )
        return torch.tensor([[out["logprobs"][str(t)] for t in token_ids] for out in outputs])

    def _boxed_logits_at(self, task, rows, continuations, token_ids) -> torch.Tensor:
        # The answer so far goes as text after the template (the engine tokenizes prompts).
        tails = self.processor.tokenizer.batch_decode(continuations)
        outputs = self._request(
            task,
            True,
            rows,
            [1] * len(rows),
            [0] * len(rows),
            tails,
            max_tokens=1,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            stop_token_ids=[],
            logprob_token_ids=list(token_ids),
        )
        return torch.tensor([[out["logprobs"][str(t)] for t in token_ids] for out in outputs])

    def _sample(self, task, reasoning, rows, counts, params, gen) -> list[list[list[int]]]:
        seeds = torch.randint(0, 2**31 - 1, (len(rows),), generator=gen).tolist()
        outputs = self._request(
            task,
            reasoning,
            rows,
            counts,
            seeds,
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            stop_token_ids=list(params.eos_token_ids),
            logprob_token_ids=None,
        )
        # vLLM keeps the stop token in token_ids; HF's continuations end before it.
        stop = set(params.eos_token_ids)
        return [[_before(seq, stop) for seq in out["samples"]] for out in outputs]


def _before(seq: list[int], stop: set[int]) -> list[int]:
    return next((seq[:i] for i, token in enumerate(seq) if token in stop), seq)


def engine_context_len(quality: QualityModel, max_new_tokens: int) -> int:
    """The longest prompt of any task (images at the pixel bound) plus `max_new_tokens`."""
    processor = quality.processor
    images = processor.image_processor
    per_image = image_tokens(
        quality.max_pixels, getattr(images, "patch_size", 14), getattr(images, "merge_size", 2)
    )
    lengths = []
    for task in ("score", "compare"):
        for reasoning in (False, True):
            text = quality._template(task, reasoning)
            ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
            n_images = text.count(processor.image_token)
            lengths.append(max_model_len(len(ids), n_images, per_image, max_new_tokens))
    return max(lengths)


def load_vllm_model(
    source: str,
    *,
    python: str | Path,
    max_pixels: int | None = None,
    gpu_memory: float = 0.85,
    engines: int = 2,
    max_new_tokens: int | None = None,
    reasoning: bool | None = None,
    batch_size: int = 8,
) -> VLLMQualityModel:
    """A checkpoint folder served by a new vLLM engine; only its processor is loaded here.

    `gpu_memory`: the share of the GPU this process's engines take together; `engines`: how
    many may be alive at once (2 where a swap starts the new before the old stops; 1 where the
    caller closes the old first). The context fits the longest prompt plus `max_new_tokens`
    (default: the longest completion any mode asks for)."""
    processor, bound = load_bounded_processor(source, max_pixels)
    base = QualityModel(
        None,
        processor,
        source=source,
        device=torch.device("cpu"),
        max_pixels=bound,
        reasoning_default=reasoning_default(source) if reasoning is None else reasoning,
        batch_size=batch_size,
    )
    length = engine_context_len(base, max_new_tokens or max(MAX_NEW_TOKENS.values()))
    engine = VLLMEngine(
        source, python, max_model_len=length, gpu_share=engine_share(gpu_memory, engines)
    )
    return VLLMQualityModel(base, engine)
