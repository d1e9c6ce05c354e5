"""Hostile uploads against a real server: POST /v1/score and POST /v1/corpus/images.

Every bad input must answer 4xx (never 5xx) naming the file and the problem, and leave the
corpus as it was: same count, same stored bytes, no half-written (`.partial-*`) files.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.corpus.limits import MiB
from tests import badinputs
from tests.e2e.conftest import Server, running_server

pytestmark = pytest.mark.e2e

SCORE = "/v1/score"
CORPUS = "/v1/corpus/images"
TIGHT_REQUEST_BYTES = 200_000
TIGHT_FILES = 20


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory) -> Iterator[Server]:
    """A server with a small request-size limit and few files per request."""
    with running_server(
        tmp_path_factory.mktemp("tight"),
        EVOQ_MAX_REQUEST_BYTES=str(TIGHT_REQUEST_BYTES),
        EVOQ_MAX_FILES_PER_REQUEST=str(TIGHT_FILES),
    ) as server:
        yield server


def _files(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in items]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Corpus:
    """What a server has stored: the corpus count and every file under the image store."""

    def __init__(self, server: Server) -> None:
        self.count = httpx.get(f"{server.url}/v1/corpus").json()["images"]
        root = server.data_dir / "images"
        self.files = {
            str(path.relative_to(root)): path.read_bytes()
            for path in root.rglob("*")
            if path.is_file()
        }
        # The anchor set (score scale) is frozen in the background after start-up, through its
        # own store: its in-flight files are not the uploads' to account for.
        anchors = server.data_dir / "anchors"
        self.partials = [
            str(p) for p in server.data_dir.rglob(".partial-*") if anchors not in p.parents
        ]

    def digests(self) -> set[str]:
        return {Path(name).name.split(".")[0] for name in self.files}


def _unchanged_except(server: Server, before: Corpus, added: set[str] = frozenset()) -> None:
    """Everything stored before is still there byte for byte; only `added` digests are new."""
    after = Corpus(server)
    assert after.partials == []
    for name, data in before.files.items():
        assert after.files.get(name) == data, f"{name} lost or changed"
    assert after.digests() - before.digests() == set(added)
    assert after.count == before.count + len(added)
    for name, data in after.files.items():  # content-addressed and complete
        assert Path(name).name.startswith(_sha(data))


@pytest.fixture(scope="module")
def seeded(api_server: Server) -> Server:
    """The main server with good images stored first, so each test can check they survive."""
    good = [
        (f"good{i}.png", badinputs.image_bytes("PNG", (30, 20), seed=100 + i)) for i in range(3)
    ]
    response = httpx.post(f"{api_server.url}{CORPUS}", files=_files(*good), timeout=60)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["stored"] * 3
    return api_server


def _assert_names_problem(response: httpx.Response, status: int, code: str, filename: str) -> dict:
    assert 400 <= response.status_code < 500, response.text
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert body["filename"] == filename and body["detail"], body
    return body


# (filename, bytes builder, status on /v1/score, error code)
BAD_FILES: dict[str, tuple[str, Callable[[], bytes], int, str]] = {
    "corrupt": ("corrupt.png", badinputs.corrupt_bytes, 422, "corrupt_image"),
    "empty": ("empty.png", lambda: b"", 422, "empty_file"),
    "truncated": ("cut.png", badinputs.truncated_png, 422, "corrupt_image"),
    "20000x20000": ("huge.png", badinputs.huge_png_header, 413, "too_many_pixels"),
    "text-as-jpg": ("holiday.jpg", lambda: badinputs.text_named_jpg()[1], 415, "not_an_image"),
    "gif": ("anim.gif", lambda: badinputs.image_bytes("GIF"), 415, "unsupported_format"),
    "animated-png": ("moving.png", badinputs.animated_png, 422, "multi_frame"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_alike_by_score_and_corpus(seeded: Server, case: str) -> None:
    name, build, status, code = BAD_FILES[case]
    data = build()
    before = Corpus(seeded)
    scored = httpx.post(f"{seeded.url}{SCORE}", files=_files((name, data)), timeout=60)
    score_body = _assert_names_problem(scored, status, code, name)

    uploaded = httpx.post(f"{seeded.url}{CORPUS}", files=_files((name, data)), timeout=60)
    # The corpus answers per file; a lone rejected file answers like the score endpoint.
    body = _assert_names_problem(uploaded, status, code, name)
    assert body["stored"] == 0 and body["rejected"] == 1
    [result] = body["results"]
    assert (result["filename"], result["status"], result["reason"]) == (name, "rejected", code)
    assert result["detail"] == score_body["detail"]  # one validator, one wording
    _unchanged_except(seeded, before)


def test_a_bad_file_among_good_ones_fails_the_score_and_stores_none(seeded: Server) -> None:
    good = badinputs.image_bytes("PNG", (26, 26), seed=201)
    before = Corpus(seeded)
    response = httpx.post(
        f"{seeded.url}{SCORE}",
        files=_files(("ok.png", good), ("cut.png", badinputs.truncated_png())),
        data={"store": "true"},
        timeout=60,
    )
    _assert_names_problem(response, 422, "corrupt_image", "cut.png")
    _unchanged_except(seeded, before)


def test_the_corpus_keeps_the_good_files_of_a_mixed_upload(seeded: Server) -> None:
    good = badinputs.image_bytes("PNG", (27, 27), seed=202)
    before = Corpus(seeded)
    response = httpx.post(
        f"{seeded.url}{CORPUS}",
        files=_files(("ok.png", good), ("corrupt.png", badinputs.corrupt_bytes())),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["filename"], r["status"]) for r in results] == [
        ("ok.png", "stored"),
        ("corrupt.png", "rejected"),
    ]
    assert results[1]["reason"] == "corrupt_image"
    _unchanged_except(seeded, before, added={_sha(good)})


# Archives: on /v1/score a zip is not an image; on the corpus each member gets its own verdict.
# (archive builder, {member label: "stored" or the rejection code})
ARCHIVES: dict[str, tuple[Callable[[], bytes], dict[str, str]]] = {
    "zip-bomb": (badinputs.zip_bomb, {"a.zip:bomb.bmp": "file_too_large"}),
    "small-zip-bomb": (
        lambda: badinputs.zip_bomb(4 * MiB),
        {"a.zip:bomb.bmp": "compression_ratio"},
    ),
    "lying-zip-bomb": (
        lambda: badinputs.zip_bomb(declared_bytes=1000),
        {"a.zip:bomb.bmp": "corrupt_archive"},
    ),
    "nested": (
        badinputs.nested_zip,
        {
            "a.zip:good.png": "stored",
            "a.zip:inner.zip": "nested_archive",
            "a.zip:sneaky.png": "nested_archive",
        },
    ),
    "symlink": (
        badinputs.symlink_zip,
        {"a.zip:link.png": "link_member", "a.zip:good.png": "stored"},
    ),
    "encrypted": (badinputs.encrypted_flag_zip, {"a.zip:good.png": "encrypted_member"}),
}


@pytest.mark.parametrize("case", list(ARCHIVES))
def test_hostile_archive(seeded: Server, case: str) -> None:
    build, expected = ARCHIVES[case]
    data = build()
    before = Corpus(seeded)
    scored = httpx.post(f"{seeded.url}{SCORE}", files=_files(("a.zip", data)), timeout=60)
    _assert_names_problem(scored, 415, "not_an_image", "a.zip")

    uploaded = httpx.post(f"{seeded.url}{CORPUS}", files=_files(("a.zip", data)), timeout=60)
    assert 400 <= uploaded.status_code < 500 or uploaded.status_code == 200, uploaded.text
    body = uploaded.json()
    got = {r["filename"]: r["reason"] or r["status"] for r in body["results"]}
    assert got == expected
    for result in body["results"]:
        assert result["status"] == "stored" or result["detail"]
    stored = {r["sha256"] for r in body["results"] if r["status"] == "stored"}
    if stored:
        assert uploaded.status_code == 200
    elif len(body["results"]) == 1:
        first = body["results"][0]
        assert body["error"] == first["reason"] and body["filename"] == first["filename"]
    else:
        assert uploaded.status_code == 422 and body["error"] == "all_rejected"
    _unchanged_except(seeded, before, added=stored)
    if case == "symlink":  # the link's target was not read in as an image
        passwd = Path("/etc/passwd").read_bytes()
        assert all(data != passwd for data in Corpus(seeded).files.values())


def _files_named(roots: list[Path], names: set[str], since: float) -> list[str]:
    found = []
    for root in roots:
        for folder, _dirs, files in os.walk(root, onerror=lambda _exc: None):
            for name in set(files) & names:
                path = Path(folder, name)
                try:
                    if path.stat().st_mtime >= since:
                        found.append(str(path))
                except OSError:
                    continue
    return found


def test_zip_slip_names_are_labels_and_nothing_lands_outside_the_store(seeded: Server) -> None:
    since = time.time() - 1
    data = badinputs.zip_slip()
    before = Corpus(seeded)
    scored = httpx.post(f"{seeded.url}{SCORE}", files=_files(("slip.zip", data)), timeout=60)
    _assert_names_problem(scored, 415, "not_an_image", "slip.zip")

    uploaded = httpx.post(f"{seeded.url}{CORPUS}", files=_files(("slip.zip", data)), timeout=60)
    assert uploaded.status_code == 200, uploaded.text
    results = uploaded.json()["results"]
    names = ["../evil.png", "../../etc/evil.png", "/tmp/abs-evil.png", "a/../../b.png", "C:\\x.png"]
    assert [r["filename"] for r in results] == [f"slip.zip:{n}" for n in names]
    # Members are images of this archive's own (no other test stores them).
    assert {r["status"] for r in results} == {"stored"}
    _unchanged_except(
        seeded, before, added={r["sha256"] for r in results if r["status"] == "stored"}
    )
    assert {r["sha256"] for r in results} <= Corpus(seeded).digests()
    basenames = {"evil.png", "abs-evil.png", "b.png", "x.png", "C:\\x.png"}
    server_root = seeded.data_dir.parent
    assert _files_named([server_root, Path("/tmp")], basenames, since) == []
    assert not Path("/etc/evil.png").exists()


def test_a_thousand_small_files_in_one_request_are_all_stored(seeded: Server) -> None:
    images = badinputs.many_small_images(1000)
    before = Corpus(seeded)
    response = httpx.post(f"{seeded.url}{CORPUS}", files=_files(*images), timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] == 1000 and body["rejected"] == 0
    assert [r["filename"] for r in body["results"]] == [name for name, _ in images]
    _unchanged_except(seeded, before, added={_sha(data) for _, data in images})


def test_wrong_content_type_is_415_on_both_endpoints(seeded: Server) -> None:
    before = Corpus(seeded)
    for path in (SCORE, CORPUS):
        response = httpx.post(f"{seeded.url}{path}", json={"files": ["a.png"]})
        assert response.status_code == 415, response.text
        body = response.json()
        assert body["error"] == "not_multipart" and "application/json" in body["detail"]
    _unchanged_except(seeded, before)


# --- limits that need a second server -------------------------------------------------------


@pytest.fixture(scope="module")
def tight_seeded(tight_server: Server) -> Server:
    good = [
        (f"good{i}.png", badinputs.image_bytes("PNG", (30, 20), seed=300 + i)) for i in range(3)
    ]
    response = httpx.post(f"{tight_server.url}{CORPUS}", files=_files(*good), timeout=60)
    assert response.status_code == 200 and response.json()["stored"] == 3, response.text
    return tight_server


def test_over_the_files_per_request_limit_is_413_on_both(tight_seeded: Server) -> None:
    images = badinputs.many_small_images(TIGHT_FILES + 1)
    before = Corpus(tight_seeded)
    for path in (SCORE, CORPUS):
        response = httpx.post(f"{tight_seeded.url}{path}", files=_files(*images), timeout=60)
        _assert_names_problem(response, 413, "too_many_files", "(request)")
    _unchanged_except(tight_seeded, before)


def test_an_archive_over_the_files_limit_stores_nothing(tight_seeded: Server) -> None:
    """Plain files first, then a zip that takes the count over: not even the first are kept."""
    plain = badinputs.many_small_images(TIGHT_FILES - 5)
    members = {
        f"m{i:02d}.png": badinputs.image_bytes("PNG", (8, 8), seed=500 + i) for i in range(8)
    }
    before = Corpus(tight_seeded)
    response = httpx.post(
        f"{tight_seeded.url}{CORPUS}",
        files=_files(*plain, ("more.zip", badinputs.zip_bytes(members))),
        timeout=60,
    )
    body = _assert_names_problem(response, 413, "too_many_files", "more.zip:m05.png")
    assert "nothing was stored" in body["detail"]
    _unchanged_except(tight_seeded, before)


def test_a_request_over_max_request_bytes_is_413_on_both(tight_seeded: Server) -> None:
    big = badinputs.image_bytes("PNG", (300, 300), seed=7)  # noise: ~270 kB
    assert len(big) > TIGHT_REQUEST_BYTES
    before = Corpus(tight_seeded)
    for path in (SCORE, CORPUS):
        response = httpx.post(f"{tight_seeded.url}{path}", files=_files(("big.png", big)))
        _assert_names_problem(response, 413, "request_too_large", "(request)")
    _unchanged_except(tight_seeded, before)


def test_a_chunked_request_is_cut_off_at_max_request_bytes(tight_seeded: Server) -> None:
    """Without a Content-Length the limit holds while the body streams in."""
    boundary = "evoqboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="s.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(2 * TIGHT_REQUEST_BYTES // 65536 + 1):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    before = Corpus(tight_seeded)
    for path in (SCORE, CORPUS):
        response = httpx.post(
            f"{tight_seeded.url}{path}",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert "content-length" not in {k.lower() for k in response.request.headers}
        _assert_names_problem(response, 413, "request_too_large", "(request)")
    _unchanged_except(tight_seeded, before)


def test_a_malformed_multipart_body_is_400_with_the_error_shape(seeded: Server) -> None:
    before = Corpus(seeded)
    for path in (SCORE, CORPUS):
        response = httpx.post(
            f"{seeded.url}{path}",
            content=b"--nothing-here--",
            headers={"Content-Type": "multipart/form-data"},  # no boundary
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_multipart" and response.json()["detail"]
    _unchanged_except(seeded, before)
