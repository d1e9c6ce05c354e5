"""Settings: the EVOQ_ environment contract and docs/settings.md's table of every setting."""

from __future__ import annotations

from app.settings import Settings
from app.settings_doc import END, SETTINGS_DOC, START, settings_table, table_in, write_table


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


def test_settings_doc_documents_every_setting() -> None:
    table = table_in(SETTINGS_DOC.read_text())
    assert table == settings_table(), (
        "stale docs/settings.md table: python -m app.settings_doc --write"
    )
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


def test_settings_doc_write_replaces_only_the_table(tmp_path) -> None:
    page = tmp_path / "settings.md"
    page.write_text(f"# Settings\n\nintro\n\n{START}\n| stale |\n{END}\n\nafter\n")
    write_table(page)
    text = page.read_text()
    assert table_in(text) == settings_table()
    assert text.startswith("# Settings\n\nintro\n\n") and text.endswith(f"{END}\n\nafter\n")
