"""The operator console in a real browser (Playwright driving Debian's chromium) against a real
`evoq serve` with its embedded worker: score, compare, upload a zip, run a tiny round to
promotion, roll back; what the entered token allows; the round form's augment fields, estimate
and confirm step; the Models page's plot order and axes; the demonstration banner. Any page
JavaScript error fails the test; every page is screenshotted. No test relies on data another
one made."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from app.console.router import PAGES
from app.rounds.schemas import AugmentIn, RoundConfigIn, StartRoundIn
from app.scoring.demo_notice import DEMO_NOTICE
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
    # A field still focused during a full-page shot made the next click land 52 px off.
    tab.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("EVOQ_TEST_SHOTS_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)


def _image_file(folder: Path, name: str, seed: int) -> Path:
    path = folder / name
    path.write_bytes(image_bytes("PNG", (56, 56), seed=seed))
    return path


ADMIN_CAN = "admin: can start rounds, upload, delete images"


def _use_token(tab, token: str) -> None:
    tab.fill("#token-input", token)
    tab.click("#token-save")


def _forget_expected_4xx(tab) -> None:
    # The browser logs a deliberate 4xx as a failed resource load: those are expected.
    tab.problems[:] = [m for m in tab.problems if "Failed to load resource" not in m]


def _images_stat(tab) -> int:
    locator = tab.locator('[data-stat="images"]')
    sync_api.expect(locator).not_to_have_text("")
    return int(locator.inner_text())


def _gradient_png(size: tuple[int, int], seed: int) -> bytes:
    """A smooth colour gradient (a thumbnail of it is recognisable, unlike noise)."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    red, green, blue = image.split()
    image = Image.merge("RGB", (red, green.point(lambda v: (v * 3 + seed) % 256), blue.rotate(90)))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_console_score_compare_corpus_round_and_rollback(console_server, page, tmp_path):
    url = f"{console_server.url}/console"
    sync_api.expect.set_options(timeout=60_000)
    expect = sync_api.expect
    a, b = _image_file(tmp_path, "a.png", 1), _image_file(tmp_path, "b.png", 2)
    (tmp_path / "broken.png").write_bytes(b"not an image")

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
    # A failed score leaves the error banner only: the previous card goes.
    page.set_input_files("#score-files", str(tmp_path / "broken.png"))
    page.click("#score-submit")
    expect(page.locator("#error")).to_contain_text("broken.png")
    expect(page.locator("#score-results .card")).to_have_count(0)
    _shot(page, tmp_path, "score-error")
    _forget_expected_4xx(page)

    # Compare: a probability, and an API error shown as the API's message, the old result gone.
    page.goto(f"{url}/compare")
    page.set_input_files("#compare-a", str(a))
    page.set_input_files("#compare-b", str(b))
    page.click("#compare-submit")
    expect(page.locator("#compare-result")).to_be_visible()
    p = float(page.inner_text("#compare-p"))
    assert 0.0 <= p <= 1.0
    _shot(page, tmp_path, "compare")
    page.set_input_files("#compare-b", str(tmp_path / "broken.png"))
    page.click("#compare-submit")
    expect(page.locator("#error")).to_contain_text("broken.png")
    expect(page.locator("#compare-result")).to_be_hidden()
    expect(page.locator("#compare-p")).to_have_text("")
    _shot(page, tmp_path, "compare-error")
    _forget_expected_4xx(page)

    # Corpus: a zip of 10 images and one text member; per-file results, totals, the list.
    members = {f"set/img{i}.png": image_bytes("PNG", (56, 56), seed=100 + i) for i in range(10)}
    members["set/readme.txt"] = b"not an image"
    archive = tmp_path / "photos.zip"
    archive.write_bytes(zip_bytes(members))
    page.goto(f"{url}/corpus")
    _use_token(page, ADMIN_TOKEN)  # opting out needs a token once the server has one
    expect(page.locator("#token-state")).to_have_text(ADMIN_CAN)
    before = _images_stat(page)
    page.set_input_files("#upload-files", str(archive))
    page.click("#upload-submit")
    rows = page.locator("#upload-results tbody tr")
    expect(rows).to_have_count(11)
    expect(page.locator("#upload-results tr.stored")).to_have_count(10)
    expect(page.locator("#upload-results tr.rejected")).to_contain_text("readme.txt")
    expect(page.locator("#upload-summary")).to_have_text("stored 10, duplicates 0, rejected 1")
    expect(page.locator('[data-stat="images"]')).to_have_text(str(before + 10))
    expect(page.locator("#images tbody tr")).to_have_count(min(20, before + 10))
    opted_out = int(page.inner_text('[data-stat="kept out of training"]'))
    page.locator("#images .train-toggle:checked").first.uncheck()
    expect(page.locator('[data-stat="kept out of training"]')).to_have_text(str(opted_out + 1))
    _shot(page, tmp_path, "corpus")

    # Rounds: the generated config form, start a tiny round (no confirm: its estimate is
    # small), watch it reach promoted.
    page.goto(f"{url}/rounds")
    expect(page.locator("#token-state")).to_have_text(ADMIN_CAN)
    expect(page.locator("#rounds tbody tr")).not_to_have_count(0)
    scalar_fields = [n for n, f in RoundConfigIn.model_fields.items() if n != "augment"]
    assert page.locator("#round-form [data-field]").count() == len(scalar_fields)
    assert page.input_value('[data-field="votes"]') == "32"  # the schema's default
    for name, value in TINY_ROUND.items():
        field = page.locator(f'[data-field="{name}"]')
        if field.evaluate("n => n.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))
    expect(page.locator("#estimate-total")).to_contain_text("Estimated")
    expect(page.locator("#estimate-warning")).to_have_count(0)
    _shot(page, tmp_path, "rounds")
    page.click("#round-start")
    try:
        page.wait_for_url(f"{url}/rounds/*")
    except sync_api.TimeoutError:
        pytest.fail(f"no round started; the page says: {page.inner_text('#error')}")
    round_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#round-status")).to_have_text("promoted", timeout=300_000)
    # One row per gate check the API reports (holdout accuracy, parse rate, spread, scale ...).
    detail = httpx.get(f"{console_server.url}/v1/admin/rounds/{round_id}", headers=_AUTH).json()
    checks = [c["name"] for c in detail["gate"]["checks"]]
    assert {"holdout_accuracy", "parse_rate", "score_spread", "scale_calibration"} <= set(checks)
    expect(page.locator("#gate tbody tr td:first-child")).to_have_text(checks)
    expect(page.locator("#gate-decision")).to_contain_text("decision: promoted")
    expect(page.locator("#curves svg.plot")).not_to_have_count(0)
    expect(page.locator("#votes-text")).to_have_text("16 / 16")
    expect(page.locator("#round-cancel")).to_be_disabled()
    _shot(page, tmp_path, "round")
    page.goto(f"{url}/rounds")
    expect(page.locator(f'#rounds tr[data-round="{round_id}"]')).to_contain_text("promoted")
    _shot(page, tmp_path, "rounds-list")

    # Models: the round's candidate serves; roll back and see its parent serve again.
    child, parent = detail["candidate_version_id"], detail["parent_version_id"]
    page.goto(f"{url}/models")
    expect(page.locator("#active-version")).to_have_text(f"v{child}")
    expect(page.locator(f'li[data-version="{child}"] > .version')).to_contain_text("serving")
    # score_std: from the shipped lineage (v1-v3) and the round's evaluation
    expect(page.locator('#metrics-plot svg.plot[data-title="score_std"]')).to_have_count(1)
    expect(page.locator('#metrics-plot svg.plot[data-title="parse_rate"]')).to_have_count(1)
    _shot(page, tmp_path, "models")
    page.click("#rollback")
    expect(page.locator("#active-version")).to_have_text(f"v{parent}")
    expect(page.locator("#activations tbody tr").first).to_contain_text("console rollback")
    _shot(page, tmp_path, "models-rolled-back")


_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_console_token_display_and_corpus_thumbnails(console_server, page, tmp_path):
    """The header says what the entered token allows (whoami); Delete and the training
    toggle are off without a token that may delete; thumbnails come from the API."""
    expect = sync_api.expect
    sync_api.expect.set_options(timeout=60_000)
    base = console_server.url
    upload = httpx.post(
        f"{base}/v1/corpus/images",
        files=[("files", ("gradient.png", _gradient_png((300, 200), seed=7), "image/png"))],
    )
    assert upload.status_code == 200, upload.text
    sha = upload.json()["results"][0]["sha256"]

    # The thumbnail endpoint: a JPEG no larger than asked; an unknown image is a 404.
    thumb = httpx.get(f"{base}/v1/corpus/images/{sha}/thumbnail", params={"size": 64})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (64, 43)  # 300x200 fitted into 64
    missing = httpx.get(f"{base}/v1/corpus/images/{'0' * 64}/thumbnail")
    assert missing.status_code == 404 and missing.json()["error"] == "image_not_found"

    page.goto(f"{base}/console/corpus")
    # No token on a server with an admin token: reading and uploading only.
    expect(page.locator("#token-state")).to_have_text("no token: can upload")
    row = page.locator(f'#images tr[data-sha="{sha}"]')
    expect(row.locator("button.delete")).to_be_disabled()
    expect(row.locator(".train-toggle")).to_be_disabled()
    expect(row.locator("button.delete")).to_have_attribute(
        "title", "needs a token that may delete: enter one above"
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#images img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert row.locator("img.thumb").evaluate("i => [i.naturalWidth, i.naturalHeight]") == [128, 85]
    _shot(page, tmp_path, "corpus-no-token")

    _use_token(page, "not-the-token")
    expect(page.locator("#token-state")).to_have_text("token rejected: read-only")
    expect(page.locator("#token-state")).to_have_class("rejected")
    page.click("#token-clear")
    _forget_expected_4xx(page)  # whoami answers the wrong token with 403

    _use_token(page, ADMIN_TOKEN)
    expect(page.locator("#token-state")).to_have_text(ADMIN_CAN)
    expect(row.locator("button.delete")).to_be_enabled()
    _shot(page, tmp_path, "corpus-admin")
    # The token is kept for the browser session: another page shows it too.
    page.goto(f"{base}/console/models")
    expect(page.locator("#token-state")).to_have_text(ADMIN_CAN)
    row = page.locator(f'#images tr[data-sha="{sha}"]')
    page.goto(f"{base}/console/corpus")
    expect(row.locator("button.delete")).to_be_enabled()
    row.locator("button.delete").click()
    expect(row).to_have_count(0)
    assert httpx.get(f"{base}/v1/corpus/images/{sha}/thumbnail").status_code == 404
    _forget_expected_4xx(page)


def _posts_round(request) -> bool:
    return request.method == "POST" and request.url.endswith("/v1/admin/rounds")


def test_console_round_form_augment_estimate_and_confirm(console_server, page, tmp_path):
    """Paper-scale defaults show the estimate's warning and ask to confirm before anything is
    sent; the augment section is structured fields that reach the API as its object. Round
    creation is intercepted in the browser: no round starts on the server."""
    expect = sync_api.expect
    sync_api.expect.set_options(timeout=60_000)
    sent: list[dict] = []

    def capture(route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        sent.append(json.loads(route.request.post_data))
        route.fulfill(
            status=409,
            content_type="application/json",
            body=json.dumps({"error": "intercepted", "detail": "held by the test"}),
        )

    page.route("**/v1/admin/rounds", capture)
    page.goto(f"{console_server.url}/console/rounds")
    expect(page.locator("#round-estimate")).to_have_count(1)
    _use_token(page, ADMIN_TOKEN)
    expect(page.locator("#token-state")).to_have_text(ADMIN_CAN)

    # The defaults are the paper's scale: the estimate warns, and Start asks first.
    assert page.input_value('[data-field="pairs"]') == "20000"
    assert page.input_value('[data-field="samples"]') == "32"
    expect(page.locator("#estimate-warning")).not_to_have_text("")
    expect(page.locator("#estimate-total")).to_contain_text("Estimated")
    page.click("#round-start")
    expect(page.locator("#round-confirm")).to_be_visible()
    expect(page.locator("#round-confirm-text")).to_contain_text("Start this round anyway?")
    expect(page.locator("#round-start")).to_be_disabled()
    _shot(page, tmp_path, "rounds-confirm")
    assert sent == []  # nothing posted before the confirmation
    page.click("#round-confirm-cancel")
    expect(page.locator("#round-confirm")).to_be_hidden()
    assert sent == []
    page.click("#round-start")
    with page.expect_request(_posts_round):
        page.click("#round-confirm-start")
    expect(page.locator("#error")).to_contain_text("intercepted: held by the test")
    assert len(sent) == 1 and sent[0] == {"config": {}}  # the defaults, confirmed
    _forget_expected_4xx(page)

    # A small round with augment as fields: no warning, no confirm, the API's own object.
    for name, value in TINY_ROUND.items():
        field = page.locator(f'[data-field="{name}"]')
        if field.evaluate("n => n.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))
    expect(page.locator('[data-augment="variants"]')).to_be_disabled()
    page.check("#augment-on")
    assert page.input_value('[data-augment="variants"]') == str(AugmentIn().variants)
    boxes = page.locator('[data-augment="types"] input[type="checkbox"]')
    assert boxes.count() == len(AugmentIn().types)
    page.fill('[data-augment="variants"]', "3")
    for kind in AugmentIn().types[3:]:
        page.uncheck(f'[data-augment="types"] input[value="{kind}"]')
    page.fill('[data-augment="same_reference_fraction"]', "0.25")
    page.select_option('[data-augment="random_pairs_from"]', "references")
    expect(page.locator("#estimate-warning")).to_have_count(0)
    expect(page.locator("#estimate-total")).to_contain_text("Estimated")
    with page.expect_request(_posts_round):
        page.click("#round-start")
    expect(page.locator("#error")).to_contain_text("intercepted")
    expect(page.locator("#round-confirm")).to_be_hidden()
    _shot(page, tmp_path, "rounds-augment")
    assert len(sent) == 2
    body = StartRoundIn.model_validate(sent[1])  # what POST /v1/admin/rounds accepts
    assert body.config.augment == AugmentIn(
        variants=3,
        types=AugmentIn().types[:3],
        same_reference_fraction=0.25,
        random_pairs_from="references",
    )
    assert body.config.pairs == TINY_ROUND["pairs"] and body.config.votes == TINY_ROUND["votes"]
    # The estimate endpoint validated the same body: a bad augment value shows its error.
    page.fill('[data-augment="variants"]', "99")
    expect(page.locator("#round-estimate")).to_contain_text("variants")
    expect(page.locator("#round-estimate")).to_have_class("estimate invalid")
    _forget_expected_4xx(page)


HEADLINE = (
    "srcc_sampled",
    "srcc_fast",
    "candidate_probe_srcc",
    "candidate_holdout_accuracy",
    "candidate_holdout_compare_accuracy",
    "compare_acc",
    "parse_rate",
    "vote_parse_rate",
    "score_std",
)
HEADLINE_GROUPS = ("srcc", "acc", "parse_rate", "score_std")


def test_console_models_plot_order_picker_and_axes(console_server, page, tmp_path):
    """SRCC, accuracy, parse rate and score spread plot first; others are picked; every axis
    label fits its plot; one-point and tiny-valued curves get sensible axes."""
    expect = sync_api.expect
    sync_api.expect.set_options(timeout=60_000)
    page.goto(f"{console_server.url}/console/models")
    plots = page.locator("#metrics-plot svg.plot")
    expect(plots).not_to_have_count(0)
    titles = plots.evaluate_all("nodes => nodes.map(n => n.dataset.title)")
    reported = httpx.get(f"{console_server.url}/v1/models").json()["versions"]
    present = {k for v in reported for k, x in (v["metrics"] or {}).items() if isinstance(x, float)}
    # The known headline metrics in their order (the shipped lineage reports 4 of them; a
    # round adds parse rates and holdout accuracies), and nothing else unless picked.
    assert [t for t in titles if t in HEADLINE] == [k for k in HEADLINE if k in present]
    assert titles[:2] == ["srcc_sampled", "srcc_fast"]
    assert not {"pseudo_acc_k1", "plcc_sampled", "calibration_anchors"} & set(titles)
    groups = [next(i for i, g in enumerate(HEADLINE_GROUPS) if g in t) for t in titles]
    assert groups == sorted(groups), titles  # SRCC, accuracy, parse rate, score spread

    # The picker adds another metric after the headline ones.
    page.click(".picker summary")
    page.check('#metrics-picker input[value="pseudo_acc_k1"]')
    expect(plots).to_have_count(len(titles) + 1)
    assert plots.last.get_attribute("data-title") == "pseudo_acc_k1"
    page.uncheck('#metrics-picker input[value="srcc_fast"]')
    expect(page.locator('#metrics-plot svg.plot[data-title="srcc_fast"]')).to_have_count(0)

    # Every tick label lies inside its plot (no cut "0000211").
    outside = plots.evaluate_all(
        "nodes => nodes.flatMap(svg => [...svg.querySelectorAll('.tick')]"
        ".filter(t => t.getBBox().x < 0).map(t => t.textContent))"
    )
    assert outside == []
    _shot(page, tmp_path, "models-picked")

    # One point: an axis a few percent around its value and one x tick; tiny values in full.
    one = page.evaluate(
        """() => {
          const box = document.getElementById("metrics-plot");
          const one = evoq.plot("one step", [{ name: "kl", points: [[1, 0.938]] }], { xLabel: "step" });
          const tiny = evoq.plot("tiny", [{ name: "kl", points: [[1, 0.0000211], [2, 0.00005]] }], { xLabel: "step" });
          box.prepend(one, tiny);
          const ticks = (svg) => [...svg.querySelectorAll(".tick")].map(t => t.textContent);
          const left = (svg) => Math.min(...[...svg.querySelectorAll(".tick")].map(t => t.getBBox().x));
          return { one: ticks(one), tiny: ticks(tiny), left: Math.min(left(one), left(tiny)) };
        }"""
    )
    y_one = [float(t) for t in one["one"][:-2]]  # then the one x tick and the "step" label
    assert 0.85 <= min(y_one) < 0.938 < max(y_one) <= 1.05, one
    assert one["one"][-2:] == ["1", "step"], one
    assert "5e-5" in one["tiny"] and "2e-5" in one["tiny"], one
    assert one["left"] >= 0
    _shot(page, tmp_path, "models-axes")


def test_console_shows_the_demo_banner_on_every_page(console_server, page, tmp_path):
    """The default model is a demonstration model: /v1/models says so, every page shows the
    notice, and the server logged it once."""
    assert httpx.get(f"{console_server.url}/v1/models").json()["demo"] is True
    for slug, _title in PAGES:
        page.goto(f"{console_server.url}/console/{slug}")
        sync_api.expect(page.locator("#demo-banner")).to_have_text(DEMO_NOTICE)
    _shot(page, tmp_path, "demo-banner")
    assert console_server.log.read_text().count(DEMO_NOTICE) == 1
