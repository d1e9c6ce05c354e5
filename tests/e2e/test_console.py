"""The operator console in a real browser (Playwright driving Debian's chromium) against a real
`evoq serve` with its embedded worker: score, compare, upload a zip, run a tiny round to
promotion, roll back. Any page JavaScript error fails the test; every page is screenshotted."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.rounds.schemas import RoundConfigIn
from tests.badinputs import image_bytes, zip_bytes
from tests.e2e.conftest import ADMIN_TOKEN, Server, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
CHROMIUM = os.environ.get("EVOQ_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Finishes in seconds on a CPU with the demo model; the gate is loosened because this checks
# the console, not learning (the same round as tests/integration/test_rounds_pipeline.py).
TINY_ROUND = {
    "pairs": 16,
    "votes": 4,
    "vote_mode": "logits",
    "samples": 4,
    "max_steps": 3,
    "pairs_per_step": 2,
    "learning_rate": 0.001,
    "format_reward_weight": 1.0,
    "eval_images": 4,
    "eval_samples": 2,
    "chunk_size": 4,
    "accuracy_margin": 1.0,
    "min_parse_rate": 0.0,
    "min_score_std": 0.0,
    "min_holdout_pairs": 1,
}


@pytest.fixture(scope="module")
def console_server(tmp_path_factory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("console"),
        EVOQ_ADMIN_TOKEN=ADMIN_TOKEN,
        EVOQ_BASE_MODEL="builtin:demo-evolved",
        EVOQ_EMBEDDED_WORKER="true",
        EVOQ_ACTIVATION_POLL_SECONDS="0.5",
    ) as server:
        yield server


@pytest.fixture()
def page(tmp_path) -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/setup does)")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1200, "height": 900})
        tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        tab.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
            ),
        )
        tab.problems = problems
        tab.set_default_timeout(60_000)
        yield tab
        browser.close()
    assert not problems, problems


def _shot(tab, tmp_path: Path, name: str) -> None:
    """Full-page screenshot under the test's folder, copied to EVOQ_TEST_SHOTS_DIR if set."""
    path = tmp_path / "shots" / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("EVOQ_TEST_SHOTS_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)


def _image_file(folder: Path, name: str, seed: int) -> Path:
    path = folder / name
    path.write_bytes(image_bytes("PNG", (56, 56), seed=seed))
    return path


def test_console_score_compare_corpus_round_and_rollback(console_server, page, tmp_path):
    url = f"{console_server.url}/console"
    sync_api.expect.set_options(timeout=60_000)
    expect = sync_api.expect
    a, b = _image_file(tmp_path, "a.png", 1), _image_file(tmp_path, "b.png", 2)

    # Score: two images, a card each with score, level and version.
    page.goto(f"{url}/score")
    page.set_input_files("#score-files", [str(a), str(b)])
    page.click("#score-submit")
    cards = page.locator("#score-results .card")
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("a.png")
    expect(cards.first.locator(".level")).not_to_have_text("")
    assert "v3" in cards.first.inner_text()  # builtin:demo-evolved registers v1 → v2 → v3
    _shot(page, tmp_path, "score")
    page.select_option("#score-mode", "sampled")
    page.fill("#score-samples", "2")
    page.check("#score-explain")
    page.set_input_files("#score-files", str(a))
    page.click("#score-submit")
    expect(page.locator("#score-results .card")).to_have_count(1)
    expect(page.locator("#score-results .card")).to_contain_text("/2 parsed")
    expect(page.locator("#score-results .card").first).to_contain_text("raw ")
    page.click("#score-results details summary")
    expect(page.locator("#score-results details pre")).to_have_count(2)
    _shot(page, tmp_path, "score-sampled-explain")

    # Compare: a probability, and an API error shown as the API's message.
    page.goto(f"{url}/compare")
    page.set_input_files("#compare-a", str(a))
    page.set_input_files("#compare-b", str(b))
    page.click("#compare-submit")
    expect(page.locator("#compare-result")).to_be_visible()
    p = float(page.inner_text("#compare-p"))
    assert 0.0 <= p <= 1.0
    _shot(page, tmp_path, "compare")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    page.set_input_files("#compare-b", str(tmp_path / "broken.png"))
    page.click("#compare-submit")
    expect(page.locator("#error")).to_contain_text("broken.png")
    _shot(page, tmp_path, "compare-error")
    # The browser logs the deliberate 4xx as a failed resource load: that one is expected.
    page.problems[:] = [m for m in page.problems if "Failed to load resource" not in m]

    # Corpus: a zip of 10 images and one text member; per-file results, totals, the list.
    members = {f"set/img{i}.png": image_bytes("PNG", (56, 56), seed=100 + i) for i in range(10)}
    members["set/readme.txt"] = b"not an image"
    archive = tmp_path / "photos.zip"
    archive.write_bytes(zip_bytes(members))
    page.goto(f"{url}/corpus")
    expect(page.locator('[data-stat="images"]')).to_have_text("0")
    page.set_input_files("#upload-files", str(archive))
    page.click("#upload-submit")
    rows = page.locator("#upload-results tbody tr")
    expect(rows).to_have_count(11)
    expect(page.locator("#upload-results tr.stored")).to_have_count(10)
    expect(page.locator("#upload-results tr.rejected")).to_contain_text("readme.txt")
    expect(page.locator("#upload-summary")).to_have_text("stored 10, duplicates 0, rejected 1")
    expect(page.locator('[data-stat="images"]')).to_have_text("10")
    expect(page.locator("#images tbody tr")).to_have_count(10)
    page.locator("#images .train-toggle").first.uncheck()
    expect(page.locator('[data-stat="kept out of training"]')).to_have_text("1")
    _shot(page, tmp_path, "corpus")

    # Rounds: the admin token, the generated config form, start, watch it reach promoted.
    page.goto(f"{url}/rounds")
    expect(page.locator("#rounds tbody")).to_contain_text("admin token")
    page.fill("#token-input", ADMIN_TOKEN)
    page.click("#token-save")
    expect(page.locator("#token-state")).to_have_text("admin")
    expect(page.locator("#rounds tbody")).to_contain_text("no rounds yet")
    assert page.locator("#round-form [data-field]").count() == len(RoundConfigIn.model_fields)
    assert page.input_value('[data-field="votes"]') == "32"  # the schema's default
    for name, value in TINY_ROUND.items():
        field = page.locator(f'[data-field="{name}"]')
        if field.evaluate("n => n.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))
    _shot(page, tmp_path, "rounds")
    page.click("#round-start")
    try:
        page.wait_for_url(f"{url}/rounds/1")
    except sync_api.TimeoutError:
        pytest.fail(f"no round started; the page says: {page.inner_text('#error')}")
    expect(page.locator("#round-status")).to_have_text("promoted", timeout=300_000)
    # holdout accuracy, parse rate, score spread, scale calibration, raw scale drift
    expect(page.locator("#gate tbody tr")).to_have_count(5)
    expect(page.locator("#gate-decision")).to_contain_text("decision: promoted")
    expect(page.locator("#curves svg.plot")).not_to_have_count(0)
    expect(page.locator("#votes-text")).to_have_text("16 / 16")
    expect(page.locator("#round-cancel")).to_be_disabled()
    _shot(page, tmp_path, "round")
    page.goto(f"{url}/rounds")
    expect(page.locator('#rounds tr[data-round="1"]')).to_contain_text("promoted")
    _shot(page, tmp_path, "rounds-list")

    # Models: v4 (the round's candidate) serves; roll back and see v3 serve again.
    page.goto(f"{url}/models")
    expect(page.locator("#active-version")).to_have_text("v4")
    expect(page.locator('li[data-version="4"] > .version')).to_contain_text("serving")
    # score_std: from the shipped lineage (v1-v3) and the round's evaluation (v4)
    expect(page.locator('#metrics-plot svg.plot[data-title="score_std"]')).to_have_count(1)
    _shot(page, tmp_path, "models")
    page.click("#rollback")
    expect(page.locator("#active-version")).to_have_text("v3")
    expect(page.locator("#activations tbody tr").first).to_contain_text("console rollback")
    _shot(page, tmp_path, "models-rolled-back")
