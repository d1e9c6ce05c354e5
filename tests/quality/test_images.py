import io

import numpy as np
import pytest
from PIL import Image

from app.quality.images import path_loader, prepare_image


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    return Image.fromarray(np.broadcast_to(x, (height, width, 3)).copy())


def _with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    raw = _with_orientation(_gradient(80, 40), orientation=6)  # "rotate 90 CW to view"
    assert Image.open(io.BytesIO(raw)).size == (80, 40)
    upright = prepare_image(raw, max_pixels=10_000)
    assert upright.size == (40, 80)
    # The gradient ran left->right; after a 90-degree turn it runs top->bottom.
    column = np.asarray(upright)[:, 20, 0].astype(int)
    assert abs(column[0] - column[-1]) > 100


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16", "RGBA"])
def test_any_mode_becomes_rgb(mode):
    image = _gradient(30, 20).convert(mode) if mode != "I;16" else Image.new("I;16", (30, 20))
    assert prepare_image(image, max_pixels=10_000).mode == "RGB"


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert prepare_image(rgba, max_pixels=1000).getpixel((5, 5)) == (255, 255, 255)


def test_large_images_shrink_within_max_pixels_keeping_aspect():
    out = prepare_image(_gradient(1000, 500), max_pixels=112 * 112)
    assert out.width * out.height <= 112 * 112
    assert out.width / out.height == pytest.approx(2.0, rel=0.03)


def test_small_images_are_not_enlarged():
    assert prepare_image(_gradient(30, 20), max_pixels=112 * 112).size == (30, 20)


def test_path_and_bytes_inputs(tmp_path):
    path = tmp_path / "x.png"
    _gradient(64, 32).save(path)
    from_path = prepare_image(path, max_pixels=10_000)
    from_str = prepare_image(str(path), max_pixels=10_000)
    from_bytes = prepare_image(path.read_bytes(), max_pixels=10_000)
    assert np.array_equal(np.asarray(from_path), np.asarray(from_str))
    assert np.array_equal(np.asarray(from_path), np.asarray(from_bytes))


def test_in_memory_model_ready_images_are_not_copied_but_files_are(tmp_path):
    ready = _gradient(40, 30)
    assert prepare_image(ready, max_pixels=10_000) is ready
    path = tmp_path / "x.png"
    ready.save(path)
    with Image.open(path) as opened:
        copied = prepare_image(opened, max_pixels=10_000)
    assert copied is not opened
    assert np.array_equal(np.asarray(copied), np.asarray(ready))  # usable after the file closed


def test_in_memory_image_with_an_orientation_tag_is_still_turned():
    tagged = Image.open(io.BytesIO(_with_orientation(_gradient(80, 40), orientation=6)))
    tagged.load()
    in_memory = tagged.copy()  # a plain Image that keeps the EXIF block
    assert type(in_memory) is Image.Image and in_memory.getexif().get(0x0112) == 6
    assert prepare_image(in_memory, max_pixels=10_000).size == (40, 80)


def test_a_prepared_image_survives_pickling():
    import pickle

    import torch

    from app.quality.images import PreparedImage

    image = _gradient(40, 30)
    vision = {"pixel_values": torch.rand(4, 6), "image_grid_thw": torch.tensor([[1, 2, 2]])}
    back = pickle.loads(pickle.dumps(PreparedImage(image, vision, "key")))
    assert back.encoder == "key" and back.image.size == (40, 30)
    assert np.array_equal(np.asarray(back.image), np.asarray(image))
    for name, value in vision.items():
        assert torch.equal(back.vision[name], value), name


def test_path_loader_returns_upright_images(tmp_path):
    path = tmp_path / "sideways.jpg"
    path.write_bytes(_with_orientation(_gradient(80, 40), orientation=6))
    loaded = path_loader({"k": path})("k")
    assert loaded.size == (40, 80) and loaded.mode == "RGB"
    column = np.asarray(loaded)[:, 20, 0].astype(int)
    assert abs(column[0] - column[-1]) > 100
