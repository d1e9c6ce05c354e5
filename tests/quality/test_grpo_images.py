"""Training sees the images voting and scoring see: a large EXIF-rotated photo gets the same
orientation and vision-token count (image_grid_thw) in a vote, a score and a GRPO step."""

import pytest
import torch
from PIL import Image
from trl import GRPOTrainer

from app.quality.grpo import GRPORoundConfig, train_grpo
from app.quality.images import path_loader
from app.quality.loading import load_model
from app.quality.processor import load_processor
from app.quality.voting import VoteResult

MAX_PIXELS = 448 * 448  # Settings.max_pixels' default, what the workers vote with


@pytest.fixture(scope="module")
def large_bound_model(tmp_path_factory):
    """A tiny model whose processor allows Qwen2.5-VL-7B's 12.8 MP, far above MAX_PIXELS: the
    faithful fixture's pixel bounds with the small vocabulary (16 s against 3 s here)."""
    from app.demo.tiny import build_tiny_model

    folder = tmp_path_factory.mktemp("models") / "large-bound"
    return build_tiny_model(folder, vocab="small", seed=0, max_pixels=12_845_056)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A 1600x1200 JPEG stored sideways (EXIF orientation 6: shown 1200 wide, 1600 tall) and a
    plain 1024x768 one."""
    folder = tmp_path_factory.mktemp("photos")
    sideways = Image.linear_gradient("L").resize((1600, 1200)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(folder / "sideways.jpg", exif=exif)
    Image.new("RGB", (1024, 768), (90, 140, 200)).save(folder / "plain.jpg")
    return {"sideways": str(folder / "sideways.jpg"), "plain": str(folder / "plain.jpg")}


def _grids(model, task, rows):
    return model.encode(task, False, rows)["image_grid_thw"].tolist()


def test_vote_train_and_score_see_the_same_upright_bounded_image(
    large_bound_model, photos, tmp_path, monkeypatch
):
    model = load_model(str(large_bound_model), device="cpu", max_pixels=MAX_PIXELS)
    load = path_loader(photos)
    vote = _grids(model, "compare", [[load("sideways"), load("plain")]])
    score = _grids(model, "score", [[load("sideways")], [load("plain")]])
    assert vote == score
    (_, h, w), _ = vote
    assert h > w  # upright: taller than wide
    assert h * w * 14 * 14 <= MAX_PIXELS  # the bound voting uses

    seen: list[list[int]] = []
    tokenize = GRPOTrainer._tokenize_prompts

    def recording(self, prompts):
        prompt_ids, images, fields = tokenize(self, prompts)
        seen.extend(fields["image_grid_thw"].tolist())
        return prompt_ids, images, fields

    monkeypatch.setattr(GRPOTrainer, "_tokenize_prompts", recording)
    config = GRPORoundConfig(
        num_generations=2,
        pairs_per_step=1,
        max_steps=1,
        max_completion_length=2,
        reasoning=False,
        device="cpu",
        max_pixels=MAX_PIXELS,
    )
    votes = [VoteResult("sideways", "plain", 3, 1, 0, 1.0)]
    out = train_grpo(large_bound_model, votes, load, config, tmp_path / "candidate").checkpoint_dir
    assert seen and {tuple(g) for g in seen} == {tuple(g) for g in vote}
    assert torch.tensor(seen).prod(-1).max() == torch.tensor(vote).prod(-1).max()
    # The child keeps its parent's processor: the bound is the deployment's, not the model's.
    assert (
        load_processor(out).image_processor.size
        == load_processor(large_bound_model).image_processor.size
    )
