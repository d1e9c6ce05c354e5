"""The round estimate's pieces: the device it assumes (GPU peaks by name, a measured CPU rate),
the parameter count read from safetensors headers, and how the config shapes the stages."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from app.rounds import estimate
from app.rounds.schemas import RoundConfigIn


def _fake_gpus(monkeypatch, name: str, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda _i=0: name)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_gpus_are_assumed_at_their_data_sheet_peak(monkeypatch) -> None:
    _fake_gpus(monkeypatch, "NVIDIA H100 80GB HBM3", 8)
    h100 = estimate.this_device("auto")
    assert (h100.count, h100.peak_flops) == (8, 989e12) and "8x NVIDIA H100" in h100.label
    _fake_gpus(monkeypatch, "Some Future GPU", 1)
    unknown = estimate.this_device("cuda")
    assert unknown.peak_flops == 312e12 and "assumed as an A100's" in unknown.label
    cpu = estimate.this_device("cpu")  # EVOQ_DEVICE=cpu ignores the GPUs
    assert cpu.label.startswith("cpu") and cpu.count == 1
    assert cpu.peak_flops == estimate.measured_cpu_flops() > 1e8


def test_parameters_are_counted_from_safetensors_headers(tmp_path) -> None:
    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, tmp_path / "model-1.safetensors")
    save_file({"c": torch.zeros(2, 2, 2)}, tmp_path / "model-2.safetensors")
    assert estimate.count_parameters(tmp_path) == 12 + 5 + 8
    assert estimate.count_parameters(tmp_path / "missing") is None
    assert estimate.count_parameters("Qwen/Qwen2.5-VL-7B-Instruct") is None


def test_the_config_shapes_the_stages_and_the_warning() -> None:
    cpu = estimate.Device("cpu (test)", 1, 1e11)
    gpus = estimate.Device("8x test GPU", 8, 1e15)

    def run(device: estimate.Device, **config: object) -> dict:
        return estimate.round_estimate(
            RoundConfigIn(**config), model_params=7e9, device=device, prefix_sharing=False
        )

    paper = run(cpu)
    assert paper["warning"] and paper["seconds"] > 3600 and paper["device"] == "cpu (test)"
    assert paper["seconds"] == pytest.approx(sum(s["seconds"] for s in paper["stages"]))
    fast = run(gpus)
    assert fast["seconds"] == pytest.approx(paper["seconds"] * 1e11 / (8 * 1e15))
    one_step = run(cpu, pairs=1000, max_steps=1, pairs_per_step=4)
    full_pass = run(cpu, pairs=1000)
    assert one_step["stages"][1]["seconds"] == pytest.approx(
        full_pass["stages"][1]["seconds"] * 4 / 900
    )
    assert one_step["stages"][0] == full_pass["stages"][0]  # votes do not depend on steps
    tiny = estimate.round_estimate(
        RoundConfigIn(pairs=8, votes=2, samples=2, max_steps=1),
        model_params=3.5e5,
        device=cpu,
        prefix_sharing=False,
    )
    assert tiny["warning"] is None and tiny["seconds"] < 60


def test_answer_only_models_are_estimated_with_answer_only_lengths() -> None:
    cpu = estimate.Device("cpu (test)", 1, 1e11)
    config = RoundConfigIn(pairs=1000, votes=8, samples=8)

    def stages(reasoning: bool) -> dict[str, float]:
        found = estimate.round_estimate(
            config, model_params=7e9, device=cpu, prefix_sharing=False, reasoning=reasoning
        )
        return {s["stage"]: s["seconds"] for s in found["stages"]}

    reasoning, answer_only = stages(True), stages(False)
    # Hundreds of decoded tokens per reasoning vote and rollout against one to eight.
    assert answer_only["vote"] < reasoning["vote"] / 2
    assert answer_only["train"] < reasoning["train"]
