"""Builders of good and hostile uploads, shared by the unit and end-to-end tests."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (32, 24), seed: int = 0) -> bytes:
    """A small noise image encoded as `fmt` (distinct seeds give distinct bytes)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def animated_png() -> bytes:
    """A two-frame APNG."""
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def camera_mpo() -> bytes:
    """A JPEG with a second embedded picture (MPO), as some cameras write."""
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "MPO", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def corrupt_bytes() -> bytes:
    """A PNG signature and IHDR followed by garbage instead of image data."""
    return image_bytes("PNG")[:33] + bytes(range(256)) * 4


def truncated_png() -> bytes:
    """A valid PNG cut in the middle of its pixel data."""
    data = image_bytes("PNG", size=(64, 64))
    return data[: len(data) // 2]


def text_named_jpg() -> tuple[str, bytes]:
    """A plain-text file wearing a .jpg name."""
    return "holiday.jpg", b"This is not a picture, just text pretending to be one.\n" * 20


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def huge_png_header(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG whose header claims width×height grey pixels, built without allocating them."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))  # one row; the rest is "missing"
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive holding `members` (name → content) in order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def zip_slip() -> bytes:
    """Images under traversal and absolute names: ../, /abs, a/../../, and a Windows drive."""
    names = ["../evil.png", "../../etc/evil.png", "/tmp/abs-evil.png", "a/../../b.png", "C:\\x.png"]
    # Seeds of its own: the other archives' good members (seeds 1-4) must not be duplicates.
    return zip_bytes({name: image_bytes("PNG", seed=90 + i) for i, name in enumerate(names)})


def zip_bomb(
    uncompressed_bytes: int = 64 * 1024 * 1024,
    name: str = "bomb.bmp",
    declared_bytes: int | None = None,
) -> bytes:
    """One member of zeros that deflates about 1000:1 (64 MiB → ~64 KiB by default).

    `declared_bytes` makes the headers lie about the uncompressed size.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\x00" * (1024 * 1024)
    deflated = b"".join(compressor.compress(chunk) for _ in range(uncompressed_bytes // len(chunk)))
    deflated += compressor.flush()
    declared = uncompressed_bytes if declared_bytes is None else declared_bytes
    return _raw_zip_member(name, deflated, declared, _zeros_crc(uncompressed_bytes))


def _zeros_crc(n: int) -> int:
    crc, chunk = 0, b"\x00" * (1024 * 1024)
    for _ in range(n // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return crc & 0xFFFFFFFF


def _raw_zip_member(name: str, deflated: bytes, size: int, crc: int) -> bytes:
    """A one-member zip written from already-deflated data (so no big buffer is built)."""
    encoded = name.encode()
    local = struct.pack(
        "<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded), 0
    )
    central = struct.pack(
        "<4s6H3I5H2I",
        b"PK\x01\x02",
        20,
        20,
        0,
        8,
        0,
        0,
        crc,
        len(deflated),
        size,
        len(encoded),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    body = local + encoded + deflated
    directory = central + encoded
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def nested_zip() -> bytes:
    """A zip holding another zip (plus one good image)."""
    inner = zip_bytes({"inner.png": image_bytes("PNG", seed=1)})
    return zip_bytes(
        {"good.png": image_bytes("PNG", seed=2), "inner.zip": inner, "sneaky.png": inner}
    )


def symlink_zip() -> bytes:
    """A zip whose member is a Unix symlink to /etc/passwd, next to one good image."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("link.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("good.png", image_bytes("PNG", seed=3))
    return buf.getvalue()


def encrypted_flag_zip() -> bytes:
    """A zip whose member has the 'encrypted' flag bit (0x1) set."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.png", image_bytes("PNG", seed=4))
    data = bytearray(buf.getvalue())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        flags = struct.unpack_from("<H", data, at + flag_offset)[0]
        struct.pack_into("<H", data, at + flag_offset, flags | 0x1)
    return bytes(data)


def many_small_images(count: int = 1000, fmt: str = "PNG") -> list[tuple[str, bytes]]:
    """`count` distinct tiny images with names img-0000.png, ..."""
    return [
        (f"img-{i:04d}.{fmt.lower()}", image_bytes(fmt, size=(8, 8), seed=i)) for i in range(count)
    ]
