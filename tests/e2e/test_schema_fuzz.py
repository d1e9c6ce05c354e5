"""Schema fuzzing with schemathesis against a real `evoq serve` process (embedded default:
SQLite, filesystem queue; tiny model; admin token set and sent, so admin operations run too).

Every operation in /openapi.json gets a bounded number of generated requests (valid and
invalid). Checks: no 5xx, responses match their documented schemas, and every 4xx body is
the one error shape `{"error": code, "detail": text, ...}`.
Cost: ~70 s on a 2-core machine (server start ~17 s, then 50 valid and 50 invalid examples for
each operation).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.badinputs import image_bytes
from tests.e2e.conftest import ADMIN_TOKEN, Server, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES_PER_OPERATION = 50


def one_error_shape(ctx, response, case) -> None:  # noqa: ANN001 - schemathesis check signature
    """Every 4xx answer is a JSON object with string `error` and `detail`."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.text!r}") from exc
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
    assert isinstance(body.get("error"), str) and body["error"], f"no `error` code: {body!r}"
    assert isinstance(body.get("detail"), str), f"no `detail` text: {body!r}"
    return None


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("fuzz"),
        EVOQ_ADMIN_TOKEN=ADMIN_TOKEN,
        EVOQ_BATCH_MAX_WAIT_MS="5",
        # Fuzzed uploads are tiny; a small pixel budget keeps each generated score cheap.
        EVOQ_MAX_PIXELS=str(64 * 64),
    ) as server:
        # A few real images, so that starting a round can succeed (201) and then conflict (409)
        # instead of always answering corpus_too_small. No worker runs: a started round stays
        # pending and costs nothing.
        files = [
            ("files", (f"seed{i}.png", image_bytes("PNG", (24, 24), seed=i), "image/png"))
            for i in range(3)
        ]
        seeded = httpx.post(f"{server.url}/v1/corpus/images", files=files, timeout=60)
        assert seeded.status_code == 200 and seeded.json()["stored"] == 3, seeded.text
        yield server


def _fuzz_operation(operation, mode: GenerationMode, base_url: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],  # no shrinking: a failure's example is reported as found
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:  # noqa: ANN001
        case.call_and_validate(
            base_url=base_url,
            headers=AUTH,
            timeout=60,
            checks=[not_a_server_error, response_schema_conformance, one_error_shape],
        )

    run()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions) + f"\n{exc}"
    return f"{type(exc).__name__}: {exc}"


def test_every_operation_conforms(fuzz_server: Server) -> None:
    url = fuzz_server.url
    # The schemathesis pytest plugin's lazy loader does not run under pytest 9, so each
    # operation's strategy is driven with hypothesis directly.
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation, mode, url)
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, or only free-form strings).
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # FailureGroup: a BaseExceptionGroup
                failures.append(f"{operation.label} [{mode.value}]: {_describe(exc)}"[:4000])
    assert not failures, f"{len(failures)} findings:\n\n" + "\n\n".join(failures)
    # The server survived the run: ready, and still scoring real images.
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
    files = [("files", ("after.png", image_bytes("PNG", (24, 24), seed=99), "image/png"))]
    assert httpx.post(f"{url}/v1/score", files=files, timeout=60).status_code == 200
    # Admin operations really ran (a generated start got through), and the token that every
    # request carried is nowhere in the server's log.
    rounds = httpx.get(f"{url}/v1/admin/rounds", headers=AUTH, timeout=10).json()["items"]
    assert rounds, "no generated request started a round"
    assert ADMIN_TOKEN not in fuzz_server.log.read_text()
