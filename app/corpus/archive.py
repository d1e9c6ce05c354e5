"""Read images out of an uploaded zip archive without trusting anything the archive says.

Member names are only ever labels: no filesystem path is built from them (no zip-slip).
Sizes are counted while decompressing; declared sizes serve only to refuse early.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from app.corpus.errors import Reason, UploadRejected
from app.corpus.limits import MiB, UploadLimits

_CHUNK = 64 * 1024
# Below this, a high ratio is normal (tiny files, flat BMPs) and harmless.
_RATIO_FLOOR_BYTES = 1 * MiB
_ENCRYPTED_FLAG = 0x1

_ARCHIVE_SUFFIXES = (
    ".zip", ".jar", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".lz", ".lzma",
)  # fmt: skip
_ARCHIVE_MAGIC = (
    b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd",
)  # fmt: skip
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ArchiveMember:
    """One archive entry: its bytes to validate as an image, or why it was refused."""

    label: str
    data: bytes | None = None
    rejection: UploadRejected | None = None


def looks_like_zip(name: str, data: bytes) -> bool:
    """True for a .zip name or zip content (leading bytes; trailing-zip polyglots are images)."""
    return name.lower().endswith(".zip") or data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def member_label(archive_name: str, member_name: str) -> str:
    """How a member is named in results: `archive.zip:member/name`, printable, bounded."""
    return f"{archive_name}:{_UNPRINTABLE.sub('?', member_name)[:300]}"


def iter_zip_members(name: str, data: bytes, limits: UploadLimits) -> Iterator[ArchiveMember]:
    """Every file entry of the zip `data`, read within `limits`; directories are skipped.

    A damaged or oversized archive yields one rejection labelled `name` and nothing else.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception as exc:  # zipfile raises BadZipFile, ValueError, struct.error, OSError...
        yield _refuse(Reason.CORRUPT_ARCHIVE, f"not a readable zip archive: {exc}", name)
        return
    if len(infos) > limits.max_archive_members:
        yield _refuse(
            Reason.TOO_MANY_MEMBERS,
            f"{len(infos)} entries exceeds the limit of {limits.max_archive_members}",
            name,
        )
        return
    budget = limits.max_archive_uncompressed_bytes
    with archive:
        for info in infos:
            label = member_label(name, info.filename)
            if budget < 0:
                yield _refuse(
                    Reason.ARCHIVE_TOO_LARGE,
                    "not read: the archive already expanded past "
                    f"{limits.max_archive_uncompressed_bytes} bytes",
                    label,
                )
                continue
            refusal = _refuse_unread(info, label, limits)
            if refusal is not None:
                yield refusal
                continue
            if info.is_dir():
                continue
            member, used = _read_member(archive, info, label, limits, budget)
            budget -= used
            yield member


def _refuse(reason: Reason, detail: str, label: str) -> ArchiveMember:
    return ArchiveMember(label=label, rejection=UploadRejected(reason, detail, label))


def _refuse_unread(info: zipfile.ZipInfo, label: str, limits: UploadLimits) -> ArchiveMember | None:
    """A rejection decided from the entry's metadata alone, or None to go on and read it."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return _refuse(Reason.LINK_MEMBER, "symbolic links are not accepted", label)
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return _refuse(Reason.SPECIAL_MEMBER, "only regular files are accepted", label)
    if info.flag_bits & _ENCRYPTED_FLAG:
        return _refuse(Reason.ENCRYPTED_MEMBER, "encrypted members are not accepted", label)
    if info.filename.lower().endswith(_ARCHIVE_SUFFIXES):
        return _refuse(Reason.NESTED_ARCHIVE, "archives inside archives are not accepted", label)
    if info.file_size > limits.max_file_bytes:
        return _refuse(
            Reason.FILE_TOO_LARGE,
            f"declares {info.file_size} bytes, over the limit of {limits.max_file_bytes}",
            label,
        )
    return None


def _read_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    label: str,
    limits: UploadLimits,
    budget: int,
) -> tuple[ArchiveMember, int]:
    """The member's bytes (or its rejection) and how many uncompressed bytes reading used."""
    ratio_cap = limits.max_member_compression_ratio * max(info.compress_size, 1)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                chunks.append(chunk)
                if size > budget:
                    return _refuse(
                        Reason.ARCHIVE_TOO_LARGE,
                        f"the archive expands past {limits.max_archive_uncompressed_bytes} bytes",
                        label,
                    ), size
                if size > limits.max_file_bytes:
                    return _refuse(
                        Reason.FILE_TOO_LARGE,
                        f"expands past the limit of {limits.max_file_bytes} bytes",
                        label,
                    ), size
                if size > _RATIO_FLOOR_BYTES and size > ratio_cap:
                    return _refuse(
                        Reason.COMPRESSION_RATIO,
                        f"expands more than {limits.max_member_compression_ratio:g}:1 "
                        f"({info.compress_size} compressed bytes)",
                        label,
                    ), size
    except Exception as exc:  # CRC mismatch, bad local header, unknown compression, ...
        return _refuse(Reason.CORRUPT_ARCHIVE, f"the member does not extract: {exc}", label), size
    data = b"".join(chunks)
    if data[:8].startswith(_ARCHIVE_MAGIC) or data[257:262] == b"ustar":
        return _refuse(
            Reason.NESTED_ARCHIVE, "archives inside archives are not accepted", label
        ), size
    return ArchiveMember(label=label, data=data), size
