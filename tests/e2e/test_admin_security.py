"""Admin endpoints against a real server: no way in without the token, the token never in a
log, and the probe-set upload held to the same upload limits as every other upload path.
Cost: ~20 s (one server start; ~3000 cheap requests)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests import badinputs
from tests.e2e.conftest import ADMIN_TOKEN, Server, running_server

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
OVERRIDE_HEADERS = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"]
REQUEST_BYTES = 300_000
FILES_PER_REQUEST = 12
# Credentials that must all be refused: none, malformed, wrong scheme, near misses, elsewhere.
BAD_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": f"Basic {ADMIN_TOKEN}"},
    {"Authorization": ADMIN_TOKEN},
    {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    {"Authorization": f"Bearer {ADMIN_TOKEN.upper()}"},
    {"X-Admin-Token": ADMIN_TOKEN},
    {"Cookie": f"token={ADMIN_TOKEN}"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("admin"),
        EVOQ_ADMIN_TOKEN=ADMIN_TOKEN,
        EVOQ_MAX_REQUEST_BYTES=str(REQUEST_BYTES),
        EVOQ_MAX_FILES_PER_REQUEST=str(FILES_PER_REQUEST),
    ) as running:
        files = [
            ("files", (f"c{i}.png", badinputs.image_bytes("PNG", (20, 20), seed=i), "image/png"))
            for i in range(3)
        ]
        assert httpx.post(f"{running.url}/v1/corpus/images", files=files).status_code == 200
        yield running


def _admin_paths(url: str) -> list[str]:
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    admin = [re.sub(r"\{[^}]+\}", "1", p) for p in paths if p.startswith("/v1/admin")]
    assert len(admin) >= 7, admin
    return admin


def _state(url: str) -> dict:
    """Everything an admin call could change, read with the token. (A version's calibration
    summary is left out: the server fills it in by itself once its anchor set is frozen.)"""
    models = httpx.get(f"{url}/v1/models").json()
    return {
        "rounds": httpx.get(f"{url}/v1/admin/rounds", headers=AUTH).json(),
        "schedule": httpx.get(f"{url}/v1/admin/schedule", headers=AUTH).json(),
        "active": models["active_version"],
        "versions": [(v["id"], v["status"]) for v in models["versions"]],
        "activations": models["activations"],
    }


def _refused(response: httpx.Response, label: str) -> None:
    assert response.status_code in (401, 403, 404, 405), f"{label}: {response.status_code}"
    if response.request.method != "HEAD":
        body = response.json()
        assert body["error"] and isinstance(body["detail"], str), f"{label}: {body}"


def test_no_path_reaches_an_admin_endpoint_without_the_token(server: Server) -> None:
    before = _state(server.url)
    bodies = {"json": {"config": {}, "enabled": True, "min_new_images": 1, "reason": "x"}}
    tried = 0
    with httpx.Client(base_url=server.url, follow_redirects=True, timeout=30) as client:
        for path in _admin_paths(server.url):
            for variant in (path, path + "/", path.replace("/admin", "//admin"), path.upper()):
                for method in METHODS:
                    for credentials in BAD_CREDENTIALS:
                        kwargs = bodies if method in ("POST", "PUT", "PATCH") else {}
                        response = client.request(method, variant, headers=credentials, **kwargs)
                        _refused(response, f"{method} {variant} {credentials}")
                        tried += 1
                    for header in OVERRIDE_HEADERS:  # a GET that asks to be treated as a POST
                        for real, override in (("GET", "POST"), ("POST", "PUT"), ("HEAD", "POST")):
                            response = client.request(real, variant, headers={header: override})
                            _refused(response, f"{real}+{header}:{override} {variant}")
                            tried += 1
    assert tried > 500
    assert _state(server.url) == before  # nothing was started, scheduled or activated


def test_the_admin_token_never_appears_in_the_log(server: Server) -> None:
    calls = [
        ("GET", "/v1/admin/rounds", {}),
        ("GET", "/v1/admin/rounds/424242", {}),
        ("POST", "/v1/admin/rounds", {"json": {"config": {"votes": 0}}}),
        ("POST", "/v1/admin/rounds", {"content": b"{not json"}),
        ("POST", "/v1/admin/models/999/activate", {"json": {}}),
        ("POST", "/v1/admin/rollback", {"json": {}}),
        ("PUT", "/v1/admin/schedule", {"json": {"enabled": "maybe"}}),
        ("POST", "/v1/admin/probe-sets", {"data": {"name": "x"}}),
        ("GET", "/v1/admin/rounds/", {}),
    ]
    for method, path, kwargs in calls:
        for headers in (AUTH, {"Authorization": f"Bearer {ADMIN_TOKEN}x"}):
            response = httpx.request(method, f"{server.url}{path}", headers=headers, **kwargs)
            assert response.status_code < 500, (method, path, response.text)
    metrics = httpx.get(f"{server.url}/metrics").text
    log = server.log.read_text()
    assert "/v1/admin/rounds" in log  # the requests were logged, just not their credentials
    assert ADMIN_TOKEN not in log and ADMIN_TOKEN not in metrics


def _probe_upload(url: str, files: list[tuple[str, bytes]], labels: str) -> httpx.Response:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    parts.append(("labels", ("mos.csv", labels.encode(), "text/csv")))
    return httpx.post(
        f"{url}/v1/admin/probe-sets", files=parts, data={"name": "p"}, headers=AUTH, timeout=60
    )


def _probe_files(server: Server) -> set[str]:
    root = server.data_dir / "probes"
    return (
        {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        if root.exists()
        else set()
    )


BAD_PROBE_FILES = {
    "corrupt.png": badinputs.corrupt_bytes(),
    "empty.png": b"",
    "cut.png": badinputs.truncated_png(),
    "huge.png": badinputs.huge_png_header(),
    "holiday.jpg": badinputs.text_named_jpg()[1],
    "anim.gif": badinputs.image_bytes("GIF"),
    "moving.png": badinputs.animated_png(),
    "bomb.zip": badinputs.zip_bomb(4 * 1024 * 1024),
}


def test_probe_set_uploads_obey_the_upload_limits(server: Server) -> None:
    good = [(f"g{i}.png", badinputs.image_bytes("PNG", (16, 16), seed=50 + i)) for i in range(3)]
    names = [n for n, _ in good] + list(BAD_PROBE_FILES)
    labels = "filename,mos\n" + "".join(f"{n},{i + 1}\n" for i, n in enumerate(names))

    # Too many files and too large a request: refused as a whole, like every upload path.
    many = badinputs.many_small_images(FILES_PER_REQUEST + 1)
    response = _probe_upload(server.url, many, labels)
    assert response.status_code == 413 and response.json()["error"] == "too_many_files"
    big = badinputs.image_bytes("PNG", (350, 350), seed=8)
    assert len(big) > REQUEST_BYTES
    response = _probe_upload(server.url, [*good, ("big.png", big)], labels)
    assert response.status_code == 413 and response.json()["error"] == "request_too_large"
    # Too few good images: refused, and nothing was written.
    response = _probe_upload(server.url, [good[0], *list(BAD_PROBE_FILES.items())[:4]], labels)
    assert response.status_code == 400 and response.json()["error"] == "probe_set_too_small"
    assert _probe_files(server) == set()

    # Bad files beside good ones: each one skipped with the validator's reason, none stored.
    response = _probe_upload(server.url, [*good, *BAD_PROBE_FILES.items()], labels)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["images"] == 3
    assert {s["filename"] for s in body["skipped"]} == set(BAD_PROBE_FILES)
    assert all(s["reason"] for s in body["skipped"])
    stored = _probe_files(server)
    assert len(stored) == 3 and all(re.fullmatch(r"p/[0-9a-f]{64}\.png", s) for s in stored)
