"""The distortion library: every type at every level, deterministic, worse with the level."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.quality import distortions
from app.quality.distortions import DISTORTIONS, LEVELS, distort


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] / 48
    base = np.stack([xx, yy, 0.5 + 0.4 * np.sin(8 * xx)], axis=-1)
    base = 0.15 + 0.7 * base + rng.normal(0, 0.02, base.shape)
    return Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8), "RGB")


def _distance(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).mean())


def test_library_has_ten_types_of_five_levels():
    assert len(DISTORTIONS) >= 10 and LEVELS == 5
    assert all(len(levels) == LEVELS for levels in DISTORTIONS.values())
    assert {"blur", "motion_blur", "jpeg", "noise", "darken", "brighten", "contrast"} <= set(
        DISTORTIONS
    )


@pytest.mark.parametrize("kind", sorted(DISTORTIONS))
def test_each_type_is_deterministic_and_grows_with_level(photo, kind):
    out = [distort(photo, kind, level, seed=3) for level in range(1, LEVELS + 1)]
    assert all(img.size == photo.size and img.mode == "RGB" for img in out)
    again = distort(photo, kind, 3, seed=3)
    assert np.array_equal(np.asarray(again), np.asarray(out[2]))
    gaps = [_distance(photo, img) for img in out]
    assert gaps[0] > 0, f"{kind} level 1 changes nothing"
    assert gaps[-1] > gaps[0], f"{kind}: level 5 is not further from the original than level 1"


def test_noise_depends_on_seed_only(photo):
    a, b = distort(photo, "noise", 2, seed=1), distort(photo, "noise", 2, seed=2)
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_bad_arguments_name_the_problem(photo):
    with pytest.raises(ValueError, match="unknown distortion 'smear'"):
        distort(photo, "smear", 1)
    with pytest.raises(ValueError, match="level must be in 1..5"):
        distort(photo, "blur", 0)
    with pytest.raises(ValueError, match="unknown distortion"):
        distortions.apply(photo, "smear", 1.0, np.random.default_rng(0))
