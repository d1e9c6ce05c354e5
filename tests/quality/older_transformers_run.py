"""Run by tests/quality/test_older_transformers.py under .venv-vllm's transformers (5.19, the
line vLLM 0.32 pins; GPU machines ship 5.17): sampled and deterministic scoring, a sampled
vote and GRPO steps (shared prefill, reference model, gradient checkpointing) on a tiny model.
Prints one JSON line."""

import json
import sys
from pathlib import Path

import numpy as np
import transformers
from PIL import Image

from app.demo.tiny import build_tiny_model
from app.quality.grpo import GRPORoundConfig, train_grpo
from app.quality.loading import load_model
from app.quality.voting import VoteResult

root = Path(sys.argv[1])
folder = build_tiny_model(root / "tiny", vocab="small", seed=0)
model = load_model(str(folder), device="cpu")
rng = np.random.default_rng(0)
images = [Image.fromarray((rng.random((56, 56, 3)) * 255).astype("uint8")) for _ in range(3)]
sampled = model.score(images, mode="sampled", n=4, seed=0, max_new_tokens=6)
deterministic = model.score(images[:2], mode="deterministic", max_new_tokens=6)
vote = model.compare([(images[0], images[1])], mode="sampled", k=4, seed=0)[0]
votes = [VoteResult(a, b, 3, 1, 0, 1.0) for a in range(3) for b in range(a + 1, 3)]
steps = {}
for name, extra in (
    ("shared", {"beta": 0.05}),
    ("checkpointing", {"gradient_checkpointing": True}),
):
    config = GRPORoundConfig(
        num_generations=2, pairs_per_step=1, max_steps=1, max_completion_length=6,
        device="cpu", learning_rate=1e-3, **{"beta": 0.0, **extra},
    )  # fmt: skip
    result = train_grpo(folder, votes, images.__getitem__, config, root / name)
    steps[name] = result.metrics["steps"]
print(
    json.dumps(
        {
            "transformers": transformers.__version__,
            "sampled_n": [r.n for r in sampled],
            "deterministic": [r.score for r in deterministic],
            "votes": vote.votes_a + vote.votes_b + vote.invalid,
            "steps": steps,
        }
    )
)
