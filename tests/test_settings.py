"""Settings: the EVOQ_ environment contract and the README's table of every setting."""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings
from app.settings_doc import END, START, settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_environment_variables_use_the_evoq_prefix(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("EVOQ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EVOQ_PORT", "9123")
    monkeypatch.setenv("EVOQ_ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("EVOQ_BASE_MODEL", "builtin:tiny")
    settings = Settings()
    assert settings.port == 9123 and settings.admin_token == "s3cret"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'evoq.sqlite3'}"
    assert settings.embedded_broker
    monkeypatch.setenv("EVOQ_BROKER_URL", "redis://127.0.0.1:6379/0")
    assert not Settings().embedded_broker


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    table = text[text.index(START) + len(START) : text.index(END)].strip()
    assert table == settings_table(), "stale README table: python -m app.settings_doc --write"
    for name in (
        "DATABASE_URL",
        "BROKER_URL",
        "DATA_DIR",
        "BASE_MODEL",
        "ADMIN_TOKEN",
        "HOST",
        "PORT",
    ):
        assert f"`EVOQ_{name}`" in table
