"""What the vLLM run tests share: .venv-vllm's interpreter and a tiny model vLLM-CPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
READY = ROOT / ".venv-vllm" / ".ready"  # written by scripts/setup-vllm when it has finished
SETUP_PID = ROOT / ".ci" / "logs" / "setup-vllm.pid"  # .ci/setup's background build
SETUP_LOG = ROOT / ".ci" / "logs" / "setup-vllm.log"


def _building() -> bool:
    try:
        os.kill(int(SETUP_PID.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def vllm_venv_ready(timeout: float = 1200.0) -> bool:
    """Whether .venv-vllm can run, waiting while .ci/setup still builds it in the background.
    A build .ci/setup started that ended without its .ready marker failed."""
    deadline = time.monotonic() + timeout
    while _building() and not READY.exists() and time.monotonic() < deadline:
        time.sleep(1)
    if SETUP_PID.exists() and not READY.exists():
        return False
    return VLLM_PYTHON.exists()


def require_vllm_venv(what: str) -> None:
    """Skip (or fail, where CI_REQUIRE_VLLM is set) unless .venv-vllm is ready; `what` names
    the tests in the message."""
    if vllm_venv_ready():
        return
    if os.environ.get("CI_REQUIRE_VLLM"):
        tail = SETUP_LOG.read_text()[-2000:] if SETUP_LOG.exists() else "(no log)"
        raise RuntimeError(f"CI_REQUIRE_VLLM is set but .venv-vllm is not ready: {tail}")
    pytest.skip(f"no .venv-vllm: run scripts/setup-vllm to test {what}")


def vllm_tiny_model(root: Path, what: str) -> Path:
    """A tiny model vLLM-CPU runs (head_dim 64) under `root`, once .venv-vllm exists: skipped
    without it unless CI_REQUIRE_VLLM is set. `what` names the tests in the skip message."""
    require_vllm_venv(what)
    from app.demo.tiny import build_tiny_model

    return build_tiny_model(
        root / "tiny64", hidden_size=128, num_attention_heads=2, num_key_value_heads=2,
        vision_hidden_size=128, vision_num_heads=2,
    )  # fmt: skip


def run_in_vllm_venv(script: Path, args: list[str], out: Path, **env: str) -> dict:
    """Run a test script with .venv-vllm's python (the project importable) and read the JSON
    object it wrote to `out`."""
    done = subprocess.run(
        [str(VLLM_PYTHON), str(script), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())
