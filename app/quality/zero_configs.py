"""DeepSpeed ZeRO configs for full fine-tunes of large models under `accelerate launch`.

"auto" values are filled in by transformers from the training arguments (batch sizes, clipping,
bf16). Untested on this project's CPU CI: DeepSpeed needs CUDA and is not a dependency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_COMMON: dict[str, Any] = {
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": "auto",
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "bf16": {"enabled": "auto"},
}

ZERO_CONFIGS: dict[str, dict[str, Any]] = {
    # Optimizer state and gradients sharded: a 7B full fine-tune on 8 x 80 GB.
    "zero2": {
        **_COMMON,
        "zero_optimization": {
            "stage": 2,
            "overlap_comm": True,
            "contiguous_gradients": True,
            "reduce_bucket_size": "auto",
        },
    },
    # Parameters sharded too; the full weights are gathered when the checkpoint is saved.
    "zero3": {
        **_COMMON,
        "zero_optimization": {
            "stage": 3,
            "overlap_comm": True,
            "contiguous_gradients": True,
            "reduce_bucket_size": "auto",
            "stage3_gather_16bit_weights_on_model_save": True,
        },
    },
}


def deepspeed_config_file(choice: str, folder: Path) -> str | None:
    """A DeepSpeed JSON config path for `choice`: '' (off: None), 'zero2', 'zero3' (written into
    `folder`) or the path of an operator's own file."""
    if not choice:
        return None
    if choice in ZERO_CONFIGS:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"deepspeed-{choice}.json"
        path.write_text(json.dumps(ZERO_CONFIGS[choice], indent=2))
        return str(path)
    if not Path(choice).is_file():
        raise ValueError(f"DeepSpeed config {choice!r}: not zero2, zero3 or an existing file")
    return choice
