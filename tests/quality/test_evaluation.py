"""`evoq eval` and its library part: labels CSV, scoring, skipped files, metrics, scatter plot."""

from __future__ import annotations

import math

import pytest
from PIL import Image
from typer.testing import CliRunner

from app.cli import app
from app.demo.synthetic import SyntheticConfig, write_synthetic
from app.quality.evaluation import evaluate, format_report, read_labels, scatter_plot
from app.quality.loading import load_model


@pytest.fixture(scope="module")
def labelled_dir(tmp_path_factory):
    """12 synthetic eval images plus a corrupt file, a missing file and a bad MOS in the CSV."""
    root = tmp_path_factory.mktemp("labelled")
    write_synthetic(root, SyntheticConfig(seed=2, counts={"prior": 0, "pool": 0, "eval": 12}))
    folder = root / "eval"
    (folder / "corrupt.png").write_bytes(b"not an image at all")
    with (folder / "labels.csv").open("a") as fh:
        fh.write("corrupt.png,3,0,none,x\nmissing.png,2,0,none,x\neval-00000.png,n/a,0,none,x\n")
    return folder


def test_read_labels_reports_bad_rows(labelled_dir):
    rows, skipped = read_labels(labelled_dir / "labels.csv", labelled_dir)
    assert len(rows) == 14  # 12 images + corrupt + missing; the bad MOS row is skipped
    assert [name for name, _ in skipped] == ["eval-00000.png"]
    assert "not a number" in skipped[0][1]


def test_read_labels_needs_columns(tmp_path):
    (tmp_path / "l.csv").write_text("name,score\na.png,3\n")
    with pytest.raises(ValueError, match="filename"):
        read_labels(tmp_path / "l.csv", tmp_path)


def test_evaluate_scores_correlates_and_skips(labelled_dir, tiny_answering_model_dir, tmp_path):
    model = load_model(str(tiny_answering_model_dir), device="cpu")
    rows, skipped = read_labels(labelled_dir / "labels.csv", labelled_dir)
    report = evaluate(model, rows, mode="fast", skipped=skipped)
    assert report.n == 12 == len(report.predicted) == len(report.mos)
    reasons = dict(report.skipped)
    assert set(reasons) == {"eval-00000.png", "corrupt.png", "missing.png"}
    assert "unreadable" in reasons["corrupt.png"] and "not found" in reasons["missing.png"]
    for value in (report.srcc, report.plcc, report.plcc_logistic, report.krcc):
        assert -1.0 <= value <= 1.0
    assert all(1.0 <= s <= 5.0 for s in report.predicted)
    text = format_report(report)
    assert "n=12" in text and "SRCC=" in text and "corrupt.png: unreadable" in text
    png = scatter_plot(report, tmp_path / "scatter.png")
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > 100


def test_evaluate_sampled_mode(labelled_dir, tiny_answering_model_dir):
    model = load_model(str(tiny_answering_model_dir), device="cpu")
    rows, _ = read_labels(labelled_dir / "labels.csv", labelled_dir)
    report = evaluate(model, rows[:12], mode="sampled", n=4, seed=0)
    # Every image is either scored or skipped with a reason, never dropped.
    assert report.n + len(report.skipped) == 12
    assert report.mode == "sampled"


def test_cli_make_synthetic_then_eval(tmp_path, tiny_answering_model_dir):
    runner = CliRunner()
    result = runner.invoke(app, ["make-synthetic", str(tmp_path / "syn"), "--counts", "4,4,10"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "syn" / "pool" / "labels.csv").is_file()
    plot = tmp_path / "scatter.png"
    args = ["eval", "--images", str(tmp_path / "syn" / "eval"), "--labels",
            str(tmp_path / "syn" / "eval" / "labels.csv"), "--model",
            str(tiny_answering_model_dir), "--plot", str(plot)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "n=10" in result.output and "KRCC=" in result.output and "PLCC(logistic)=" in result.output
    )
    assert plot.is_file()
    srcc = float(result.output.split("SRCC=")[1].split()[0])
    assert not math.isnan(srcc)


def test_cli_eval_resolves_a_registry_version(tmp_path, monkeypatch, tiny_answering_model_dir):
    from app import db as app_db
    from app import settings as app_settings
    from app.registry import service as registry

    monkeypatch.setenv("EVOQ_DATA_DIR", str(tmp_path / "data"))
    for cached in (app_settings.get_settings, app_db.get_engine, app_db._session_factory):
        cached.cache_clear()
    try:
        app_db.migrate()
        with app_db.session_scope() as db:
            registry.create(
                db=db, base_model="tiny", checkpoint_path=str(tiny_answering_model_dir), digest="x"
            )
        runner = CliRunner()
        runner.invoke(app, ["make-synthetic", str(tmp_path / "syn"), "--counts", "4,4,6"])
        eval_dir = tmp_path / "syn" / "eval"
        common = ["eval", "--images", str(eval_dir), "--labels", str(eval_dir / "labels.csv")]
        plot = ["--plot", str(tmp_path / "s.png")]
        result = runner.invoke(app, [*common, "--model", "v1", *plot])
        assert result.exit_code == 0, result.output
        assert "n=6" in result.output
        missing = runner.invoke(app, [*common, "--model", "7", *plot])
        assert missing.exit_code != 0 and "no model version 7" in missing.output
    finally:
        for cached in (app_settings.get_settings, app_db.get_engine, app_db._session_factory):
            cached.cache_clear()


# ---- `evoq eval` as a new user runs it: clear errors, --out, --limit, --seed, duplicates ----


def _eval_args(folder, *extra: str) -> list[str]:
    return ["eval", "--images", str(folder), "--labels", str(folder / "labels.csv"), *extra]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": "missing.csv"}, "labels file not found"),
        ({"csv": "name,score\na.png,3\n"}, "need a header line with filename,mos"),
        ({"model": "builtin:nonesuch"}, "unknown builtin model 'builtin:nonesuch'"),
        ({"model": "no/such/folder"}, "model folder not found: no/such/folder"),
        ({"images": "absent"}, "images folder not found"),
        ({"extra": ["--samples", "0"]}, "--samples"),
        ({"extra": ["--out", "results.txt"]}, "must end in .csv or .jsonl"),
    ],
)
def test_cli_eval_bad_input_is_a_clear_error(tmp_path, monkeypatch, change, message):
    monkeypatch.setenv("EVOQ_DATA_DIR", str(tmp_path / "data"))
    from app import settings as app_settings

    app_settings.get_settings.cache_clear()
    (tmp_path / "labels.csv").write_text(change.get("csv", "filename,mos\na.png,3\nb.png,4\n"))
    images = tmp_path / change.get("images", "")
    args = ["eval", "--images", str(images), "--labels", str(tmp_path / change.get("labels", "labels.csv"))]  # fmt: skip
    args += ["--model", change.get("model", "builtin:tiny"), *change.get("extra", [])]
    result = CliRunner().invoke(app, args)
    app_settings.get_settings.cache_clear()
    assert result.exit_code != 0
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_read_labels_reports_duplicates_and_keeps_the_first(tmp_path):
    (tmp_path / "l.csv").write_text("filename,mos\na.png,3\nb.png,2\na.png,4\n")
    rows, skipped = read_labels(tmp_path / "l.csv", tmp_path)
    assert [(r.filename, r.mos) for r in rows] == [("a.png", 3.0), ("b.png", 2.0)]
    assert skipped == [("a.png", "duplicate row (line 4); scored once, with line 2")]


def test_evaluate_streams_batches_and_reports_progress(labelled_dir, tiny_answering_model_dir):
    model = load_model(str(tiny_answering_model_dir), device="cpu")
    rows, _ = read_labels(labelled_dir / "labels.csv", labelled_dir)
    seen: list[int] = []
    calls: list[int] = []
    original = model.score

    def spy(images, **kwargs):
        calls.append(len(images))
        return original(images, **kwargs)

    model.score = spy
    report = evaluate(model, rows, batch_size=5, on_progress=seen.append)
    assert seen == [5, 5, 4] and sum(seen) == len(rows)
    assert max(calls) <= 5  # never more than one batch of images in memory
    assert report.n == 12 and len(report.std) == 12


def test_cli_eval_out_limit_seed_and_title(
    tmp_path, tiny_answering_model_dir, labelled_dir, monkeypatch
):
    import csv as csv_module
    import json

    from app.quality import evaluation

    titles: list[str] = []
    real_plot = evaluation.scatter_plot

    def spy(report, path, title=""):
        titles.append(title)
        return real_plot(report, path, title=title)

    monkeypatch.setattr(evaluation, "scatter_plot", spy)

    out = tmp_path / "per-image.csv"
    args = _eval_args(labelled_dir, "--model", str(tiny_answering_model_dir), "--out", str(out),
                      "--limit", "8", "--seed", "3", "--plot", str(tmp_path / "p.png"))  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    with out.open() as fh:
        written = list(csv_module.DictReader(fh))
    assert list(written[0]) == ["filename", "mos", "score", "std"]
    assert 6 <= len(written) <= 8  # 8 rows drawn; corrupt/missing ones among them are skipped
    again_args = [str(tmp_path / "again.jsonl") if a == str(out) else a for a in args]
    again = CliRunner().invoke(app, again_args)
    assert again.exit_code == 0, again.output
    lines = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [r["filename"] for r in lines] == [
        r["filename"] for r in written
    ]  # same seed, same draw
    assert "scoring" in first.output  # the progress bar
    # the model as named on the command line and the dataset (the labels' folder)
    assert titles[0] == f"{tiny_answering_model_dir} on {labelled_dir.name} (labels.csv)"


def test_cli_eval_with_nothing_scorable_fails(tmp_path, tiny_answering_model_dir):
    (tmp_path / "labels.csv").write_text("filename,mos\ngone.png,3\nalso-gone.png,2\n")
    args = _eval_args(tmp_path, "--model", str(tiny_answering_model_dir))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "gone.png: file not found" in result.output and "only 0 image(s)" in result.output


def test_eval_help_names_the_default_model():
    result = CliRunner().invoke(app, ["eval", "--help"], terminal_width=200)
    assert "builtin:demo-evolved" in result.output


def test_builtin_build_notice(tmp_path):
    import app.model_sources  # noqa: F401 - registers builtin:demo
    from app.quality.builtins import pending_build

    assert "about 5 minutes" in pending_build("builtin:demo", tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "config.json").write_text("{}")
    assert pending_build("builtin:demo", tmp_path) is None
    assert pending_build("/some/folder", tmp_path) is None
