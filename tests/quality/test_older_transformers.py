"""The decoding and training code on the older transformers 5 line (<= 5.19) as well as 5.2x:
the KV cache is `past_key_values` there and `cache` here (app/quality/kv_cache.py). GPU machines
ship 5.17 and vLLM 0.32 pins <5.20, so both must run; .venv-vllm holds 5.19 with TRL."""

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.quality.kv_cache import cache_kwargs, output_cache

ROOT = Path(__file__).resolve().parents[2]
OLDER_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"


class _NewStyle:
    def forward(self, input_ids=None, cache=None, use_cache=False): ...


class _OldStyle:
    def forward(self, input_ids=None, past_key_values=None, use_cache=False): ...


def test_cache_is_passed_and_read_under_either_name():
    assert cache_kwargs(_NewStyle(), "kv") == {"cache": "kv"}
    assert cache_kwargs(_OldStyle(), "kv") == {"past_key_values": "kv"}
    assert output_cache(SimpleNamespace(cache="new")) == "new"
    assert output_cache(SimpleNamespace(past_key_values="old")) == "old"
    assert output_cache(SimpleNamespace(cache=None, past_key_values="old")) == "old"
    assert output_cache(SimpleNamespace()) is None


@pytest.mark.slow
@pytest.mark.skipif(
    not OLDER_PYTHON.exists() and not os.environ.get("CI_REQUIRE_VLLM"),
    reason="no .venv-vllm (scripts/setup-vllm): no older transformers to run on",
)
def test_scoring_voting_and_grpo_run_on_transformers_5_19(tmp_path):
    run = subprocess.run(
        [
            str(OLDER_PYTHON),
            str(ROOT / "tests" / "quality" / "older_transformers_run.py"),
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert (
        result["transformers"].startswith("5.") and int(result["transformers"].split(".")[1]) < 20
    )
    assert result["sampled_n"] == [4, 4, 4] and result["votes"] == 4
    assert all(1.0 <= s <= 5.0 for s in result["deterministic"])
    assert result["steps"] == {"shared": 1, "checkpointing": 1}
