"""Who may do what, against real servers: every endpoint x no token / wrong token / read /
write / admin, on three configurations (admin token only; admin + write; admin + write +
read). One server per configuration, all three up for the whole module (~15 s each to start)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.badinputs import image_bytes
from tests.e2e.conftest import ADMIN_TOKEN, Server, running_server

pytestmark = pytest.mark.e2e

WRITE_TOKEN, READ_TOKEN = "e2e-write-token", "e2e-read-token"
CREDENTIALS = {
    "none": None,
    "wrong": "not-a-configured-token",
    "read": READ_TOKEN,
    "write": WRITE_TOKEN,
    "admin": ADMIN_TOKEN,
}
CONFIGS = {
    "admin-only": {"EVOQ_ADMIN_TOKEN": ADMIN_TOKEN},
    "admin+write": {"EVOQ_ADMIN_TOKEN": ADMIN_TOKEN, "EVOQ_WRITE_TOKEN": WRITE_TOKEN},
    "admin+write+read": {
        "EVOQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "EVOQ_WRITE_TOKEN": WRITE_TOKEN,
        "EVOQ_READ_TOKEN": READ_TOKEN,
    },
}
# The expected answer per configuration and credential: "ok", 401 or 403. A token that is not
# configured on the server is a wrong token (403).
_ = "ok"
EXPECTED: dict[str, dict[str, dict[str, object]]] = {
    # action: config: credential: outcome
    "score": {
        "admin-only": {"none": _, "wrong": 403, "read": 403, "write": 403, "admin": _},
        "admin+write": {"none": _, "wrong": 403, "read": 403, "write": _, "admin": _},
        "admin+write+read": {"none": 401, "wrong": 403, "read": _, "write": _, "admin": _},
    },
    "upload": {
        "admin-only": {"none": _, "wrong": 403, "read": 403, "write": 403, "admin": _},
        "admin+write": {"none": 401, "wrong": 403, "read": 403, "write": _, "admin": _},
        "admin+write+read": {"none": 401, "wrong": 403, "read": 403, "write": _, "admin": _},
    },
    "delete": {  # opt-out and delete: never without a token once any token is configured
        "admin-only": {"none": 401, "wrong": 403, "read": 403, "write": 403, "admin": _},
        "admin+write": {"none": 401, "wrong": 403, "read": 403, "write": _, "admin": _},
        "admin+write+read": {"none": 401, "wrong": 403, "read": 403, "write": _, "admin": _},
    },
    "admin": {
        "admin-only": {"none": 401, "wrong": 403, "read": 403, "write": 403, "admin": _},
        "admin+write": {"none": 401, "wrong": 403, "read": 403, "write": 403, "admin": _},
        "admin+write+read": {"none": 401, "wrong": 403, "read": 403, "write": 403, "admin": _},
    },
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, Server]]:
    """One server per configuration, all started once: the tests may run in any order (a
    shuffled run) without restarting servers."""
    with ExitStack() as stack:
        yield {
            config: stack.enter_context(
                running_server(tmp_path_factory.mktemp(f"roles-{config}"), **env)
            )
            for config, env in CONFIGS.items()
        }


def _png(seed: int) -> bytes:
    return image_bytes("PNG", (24, 24), seed=seed)


_SEED = iter(range(10_000, 1_000_000))


def _own_image(url: str) -> str:
    """A fresh corpus image (uploaded with the admin token) for this call alone."""
    files = [("files", ("own.png", _png(next(_SEED)), "image/png"))]
    answer = httpx.post(f"{url}/v1/corpus/images", files=files, headers=_auth(ADMIN_TOKEN))
    assert answer.status_code == 200, answer.text
    return answer.json()["results"][0]["sha256"]


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


# endpoint: (action, success status, call(url, headers) -> response)
ENDPOINTS = {
    "POST /v1/score": (
        "score",
        (200, 503),  # 503 only while the model loads
        lambda url, h: httpx.post(
            f"{url}/v1/score", files=[("files", ("a.png", _png(1), "image/png"))], headers=h
        ),
    ),
    "POST /v1/compare": (
        "score",
        (200, 503),
        lambda url, h: httpx.post(
            f"{url}/v1/compare",
            files=[
                ("files", ("a.png", _png(1), "image/png")),
                ("files", ("b.png", _png(2), "image/png")),
            ],
            headers=h,
        ),
    ),
    "POST /v1/score store=true": (
        "upload",  # storing adds to the corpus
        (200, 503),
        lambda url, h: httpx.post(
            f"{url}/v1/score",
            files=[("files", ("s.png", _png(next(_SEED)), "image/png"))],
            data={"store": "true"},
            headers=h,
        ),
    ),
    "GET /v1/models": ("score", (200,), lambda url, h: httpx.get(f"{url}/v1/models", headers=h)),
    "GET /v1/models/1": (
        "score",
        (200,),
        lambda url, h: httpx.get(f"{url}/v1/models/1", headers=h),
    ),
    "GET /v1/corpus": ("score", (200,), lambda url, h: httpx.get(f"{url}/v1/corpus", headers=h)),
    "GET /v1/corpus/images": (
        "score",
        (200,),
        lambda url, h: httpx.get(f"{url}/v1/corpus/images", headers=h),
    ),
    "POST /v1/corpus/images": (
        "upload",
        (200,),
        lambda url, h: httpx.post(
            f"{url}/v1/corpus/images",
            files=[("files", ("u.png", _png(next(_SEED)), "image/png"))],
            headers=h,
        ),
    ),
    "GET /v1/corpus/limits": (
        "upload",
        (200,),
        lambda url, h: httpx.get(f"{url}/v1/corpus/limits", headers=h),
    ),
    "PATCH /v1/corpus/images/{sha}": (
        "delete",
        (200,),
        lambda url, h: httpx.patch(
            f"{url}/v1/corpus/images/{_own_image(url)}", json={"train_opt_out": True}, headers=h
        ),
    ),
    "DELETE /v1/corpus/images/{sha}": (
        "delete",
        (204,),
        lambda url, h: httpx.delete(f"{url}/v1/corpus/images/{_own_image(url)}", headers=h),
    ),
    "GET /v1/admin/rounds": (
        "admin",
        (200,),
        lambda url, h: httpx.get(f"{url}/v1/admin/rounds", headers=h),
    ),
    "POST /v1/admin/rollback": (
        "admin",
        (409,),  # only the base version stands: nothing to roll back, but past the guard
        lambda url, h: httpx.post(f"{url}/v1/admin/rollback", json={}, headers=h),
    ),
}


@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("config", list(CONFIGS))
def test_role_matrix(servers, config: str, endpoint: str, credential: str) -> None:
    running = servers[config]
    action, success, call = ENDPOINTS[endpoint]
    expected = EXPECTED[action][config][credential]
    response = call(running.url, _auth(CREDENTIALS[credential]))
    if expected == "ok":
        assert response.status_code in success, (config, credential, response.text)
    else:
        assert response.status_code == expected, (config, credential, response.text)
        body = response.json()
        assert body["error"] == {401: "unauthorized", 403: "forbidden"}[expected]
        assert CREDENTIALS[credential] is None or CREDENTIALS[credential] not in body["detail"]


@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize("config", list(CONFIGS))
def test_whoami_names_the_role_and_what_it_allows(servers, config: str, credential: str) -> None:
    running = servers[config]
    response = httpx.get(f"{running.url}/v1/auth/whoami", headers=_auth(CREDENTIALS[credential]))
    expected = {a: EXPECTED[a][config][credential] for a in EXPECTED}
    if all(outcome == 403 for outcome in expected.values()):  # a token matching no role
        assert response.status_code == 403 and response.json()["error"] == "forbidden"
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["role"] == ("anonymous" if credential == "none" else credential)
    assert body["can"] == {a: outcome == "ok" for a, outcome in expected.items()}
