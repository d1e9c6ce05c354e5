"""A vLLM worker extension for GRPO rollouts through a vLLM server whose trainer has no CUDA
(the weight sync TRL 1.16 offers runs on NCCL only). The server is started with
`--worker-extension-cls app.quality.vllm_server_worker.WeightReload` and the project on its
PYTHONPATH; the trainer writes its weights to a directory both can read and asks the server to
reload them (app/quality/vllm_server.py). Imports nothing but the project's vLLM helpers.
"""

from __future__ import annotations

EXTENSION = "app.quality.vllm_server_worker.WeightReload"


class WeightReload:
    """Mixed into each vLLM worker by `--worker-extension-cls`."""

    def evoq_reload_weights(self, path: str) -> int:
        """Reload the weights under `path` in place, then re-process each LM head (a tied head
        keeps the old weights otherwise, silently, on vLLM-CPU); the number of heads."""
        from app.quality.vllm_rollouts import reprocess_lm_heads

        self.reload_weights(weights_path=path, is_checkpoint_format=True)  # type: ignore[attr-defined]
        return reprocess_lm_heads(self.get_model())  # type: ignore[attr-defined]

    def evoq_weight_sums(self) -> dict[str, float]:
        """Each weight's sum, by vLLM's name (tests compare them with the trainer's)."""
        return {
            name: float(param.double().sum())
            for name, param in self.get_model().named_parameters()  # type: ignore[attr-defined]
        }
