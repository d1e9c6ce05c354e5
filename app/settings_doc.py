"""Renders the settings table of docs/settings.md from the Settings class, so the two cannot drift
apart (the README links to it)."""

from __future__ import annotations

import sys
from pathlib import Path

from app.settings import Settings

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
SETTINGS_DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def settings_table() -> str:
    """A Markdown table: environment variable, default, meaning."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, (set, frozenset)):
            default = ",".join(sorted(default))  # sets print in hash order
        shown = "(empty)" if default in ("", None) else f"`{default}`"
        rows.append(f"| `EVOQ_{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)


def table_in(text: str) -> str:
    """The table between the settings-table markers of a document."""
    return text[text.index(START) + len(START) : text.index(END)].strip()


def write_table(path: Path = SETTINGS_DOC) -> None:
    """Replace the table between the document's settings-table markers."""
    text = path.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    path.write_text(text[:start] + "\n" + settings_table() + "\n" + text[end:])


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_table()
    else:
        print(settings_table())
