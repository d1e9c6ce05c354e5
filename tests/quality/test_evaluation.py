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
