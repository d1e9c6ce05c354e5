"""What the vLLM run tests share: .venv-vllm's interpreter and a tiny model vLLM-CPU runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"


def vllm_tiny_model(root: Path, what: str) -> Path:
    """A tiny model vLLM-CPU runs (head_dim 64) under `root`, once .venv-vllm exists: skipped
    without it unless CI_REQUIRE_VLLM is set. `what` names the tests in the skip message."""
    if not VLLM_PYTHON.exists():
        if os.environ.get("CI_REQUIRE_VLLM"):
            raise RuntimeError(f"CI_REQUIRE_VLLM is set but {VLLM_PYTHON} is missing")
        pytest.skip(f"no .venv-vllm: run scripts/setup-vllm to test {what}")
    from app.demo.tiny import build_tiny_model

    return build_tiny_model(
        root / "tiny64", hidden_size=128, num_attention_heads=2, num_key_value_heads=2,
        vision_hidden_size=128, vision_num_heads=2,
    )  # fmt: skip


def run_in_vllm_venv(script: Path, args: list[str], out: Path, **env: str) -> dict:
    """Run a test script with .venv-vllm's python (the project importable) and read the JSON
    object it wrote to `out`."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [str(VLLM_PYTHON), str(script), *args],
        env={**os.environ, "PYTHONPATH": str(root), **env}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())
