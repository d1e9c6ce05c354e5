"""Round-2 augmentation: variants per reference, same-reference pairs, deterministic pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.quality.augment import (
    AugmentConfig,
    Variant,
    augmented_pairs,
    parse_variant,
    reference_of,
    variant_loader,
    variants_for,
)


def test_variants_use_distinct_types_and_valid_levels():
    config = AugmentConfig(variants=10)
    found = variants_for("img", config, seed=0)
    assert len(found) == 10 and len({v.kind for v in found}) == 10
    assert all(1 <= v.level <= 5 and v.ref == "img" for v in found)
    assert found == variants_for("img", config, seed=0)
    assert found != variants_for("img", config, seed=1)


def test_more_variants_than_types_repeat_types():
    found = variants_for("img", AugmentConfig(variants=7, types=("darken", "noise")), seed=0)
    assert len(found) == 7 and {v.kind for v in found} == {"darken", "noise"}


def test_augmented_pairs_mix_same_reference_and_random_pairs():
    ids = [f"i{k}" for k in range(40)]
    config = AugmentConfig(variants=10, same_reference_fraction=0.5)
    pairs = augmented_pairs(ids, 400, config, holdout_fraction=0.1, seed=5)
    assert len(pairs) == 400
    assert len({frozenset((p.a, p.b)) for p in pairs}) == 400  # distinct, no self-pairs
    assert all(p.a != p.b for p in pairs)
    same = sum(reference_of(p.a) == reference_of(p.b) for p in pairs)
    assert 200 <= same < 260  # the share asked for, plus a few random ones by chance
    assert sum(p.holdout for p in pairs) == 40
    assert any(isinstance(p.a, Variant) and not isinstance(p.b, Variant) for p in pairs)
    assert pairs == augmented_pairs(ids, 400, config, holdout_fraction=0.1, seed=5)
    assert {reference_of(k) for p in pairs for k in (p.a, p.b)} <= set(ids)


def test_random_pairs_over_references_keep_variants_beside_their_own_image():
    ids = [f"i{k}" for k in range(40)]
    config = AugmentConfig(variants=10, random_pairs_from="references")
    pairs = augmented_pairs(ids, 400, config, seed=5)
    assert len({frozenset((p.a, p.b)) for p in pairs}) == 400
    cross = [p for p in pairs if reference_of(p.a) != reference_of(p.b)]
    assert len(cross) == 200  # the random half: stored images only
    assert not any(isinstance(k, Variant) for p in cross for k in (p.a, p.b))
    assert any(isinstance(p.a, Variant) or isinstance(p.b, Variant) for p in pairs)
    with pytest.raises(ValueError, match="random_pairs_from"):
        AugmentConfig(variants=2, random_pairs_from="everything")


def test_too_many_pairs_is_refused():
    with pytest.raises(ValueError, match="pairs requested"):
        augmented_pairs(["a", "b"], 100, AugmentConfig(variants=1), seed=0)


def test_variant_keys_round_trip_through_their_stored_spec():
    v = Variant("abc", "motion_blur", 3)
    assert str(v) == "abc~motion_blur-3"
    assert parse_variant("abc", "motion_blur-3") == v
    assert parse_variant("abc", None) == "abc"


def test_loader_rebuilds_the_same_pixels_and_passes_stored_images_through():
    img = Image.new("RGB", (32, 32), (120, 80, 200))
    calls: list[str] = []

    def load(key):
        calls.append(key)
        return img

    load_key = variant_loader(load, seed=4)
    assert load_key("abc") is img
    a = np.asarray(load_key(Variant("abc", "noise", 4)))
    b = np.asarray(variant_loader(load, seed=4)(Variant("abc", "noise", 4)))
    assert np.array_equal(a, b) and not np.array_equal(a, np.asarray(img))
    assert calls == ["abc", "abc", "abc"]  # a variant loads its reference, never itself


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="unknown distortion types"):
        AugmentConfig(variants=2, types=("smear",))
    with pytest.raises(ValueError, match="same_reference_fraction"):
        AugmentConfig(variants=2, same_reference_fraction=1.5)


def test_variants_of_a_file_do_not_depend_on_its_folder(tmp_path):
    config = AugmentConfig(variants=4, types=("darken", "noise"))
    here, there = "/data/run-a/pool/img-7.png", "/tmp/xyz/pool/img-7.png"
    assert [v.spec for v in variants_for(here, config, 3)] == [
        v.spec for v in variants_for(there, config, 3)
    ]
    image = Image.new("RGB", (16, 16), (120, 130, 140))
    load = variant_loader(lambda key: image, seed=3)
    noisy_here, noisy_there = (load(Variant(ref, "noise", 3)) for ref in (here, there))
    assert np.array_equal(np.asarray(noisy_here), np.asarray(noisy_there))
    # Stored images are keyed by sha256: those keys seed as they are.
    assert variants_for("ab" * 32, config, 3) != variants_for("cd" * 32, config, 3)
