"""The train stage stores GRPO's metrics as JSON Postgres accepts."""

from __future__ import annotations

import json
import math

from workers.stages.train import json_safe


def test_non_finite_metrics_become_null() -> None:
    # beta 0: TRL logs no KL, so its mean over the steps is NaN.
    metrics = {"kl_avg": math.nan, "loss_avg": -0.4, "steps": 1, "rollout_backend": "hf"}
    per_step = {"kl": [], "grad_norm": [0.3, math.inf], "reward": [0.5, -math.inf]}
    assert json_safe(metrics) == {
        "kl_avg": None, "loss_avg": -0.4, "steps": 1, "rollout_backend": "hf"
    }  # fmt: skip
    assert json_safe(per_step) == {"kl": [], "grad_norm": [0.3, None], "reward": [0.5, None]}
    json.dumps(json_safe(per_step), allow_nan=False)  # what Postgres' JSON type requires
