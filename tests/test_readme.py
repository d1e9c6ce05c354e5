"""The README is a guide: short, its links resolve to docs/ files and headings, and it shows the
exact test command CI runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (fenced and indented code is not scanned)."""
    lines = path.read_text().splitlines()
    return {_slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


def _local_links(path: Path) -> list[tuple[Path, str]]:
    """Each relative link of a Markdown file as (target file, fragment)."""
    found = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not files
            continue
        file, _, fragment = target.partition("#")
        found.append((Path(os.path.normpath(path.parent / file)) if file else path, fragment))
    return found


def _ci_test_command() -> str:
    """The command `.ci/run` runs: the line starting `bash .ci/setup &&` and its continuations."""
    text = (ROOT / ".ci" / "run").read_text().replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("bash .ci/setup &&")]
    return " ".join(line.split())


def test_readme_is_under_300_lines() -> None:
    assert len(README.read_text().splitlines()) < 300


def test_readme_links_only_to_existing_docs_files_and_headings() -> None:
    links = _local_links(README)
    assert len(links) >= 5, "the README should link its docs/ pages"
    for target, fragment in links:
        assert target.is_relative_to(ROOT / "docs") or target == README, target
        assert target.is_file(), f"README links to missing {target}"
        if fragment:
            assert fragment in _anchors(target), f"no heading #{fragment} in {target.name}"


def test_docs_links_resolve() -> None:
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target, fragment in _local_links(page):
            assert target.is_file(), f"{page.name} links to missing {target}"
            if fragment and target.suffix == ".md":
                assert fragment in _anchors(target), f"{page.name}: no #{fragment} in {target.name}"


def test_readme_shows_the_test_command_ci_runs() -> None:
    command = _ci_test_command()
    assert "pytest" in command and "random_order" in command
    readme = " ".join(README.read_text().replace("\\\n", " ").split())
    assert command in readme


def test_readme_states_the_default_models_real_photo_numbers() -> None:
    limits = README.read_text().split("## Limits", 1)[1].split("\n## ", 1)[0]
    for fact in ("850", "0.08 (fast)", "0.06 (sampled)", '"demo": true', "issue 29"):
        assert fact in limits, fact
