"""Renders the README's settings table from the Settings class, so the two cannot drift apart."""

from __future__ import annotations

from app.settings import Settings


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


if __name__ == "__main__":
    print(settings_table())
