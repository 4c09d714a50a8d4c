"""The README and docs/ link only to files (and headings) that exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = ("http://", "https://", "mailto:")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)   # code blocks hold no links
    return [m.group(1) for m in LINK.finditer(text)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    assert links(doc) or doc.name != "README.md"
    broken = []
    for target in links(doc):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert broken == []


def test_the_docs_the_readme_promises_exist():
    readme = links(ROOT / "README.md")
    for name in ("docs/operators-guide.md", "docs/domain.md", "docs/deployment.md"):
        assert name in readme
    guide = links(ROOT / "docs" / "operators-guide.md")
    assert {"img/dashboard-1366x768.png", "img/dashboard-1920x1080.png"} <= set(guide)


def test_a_broken_link_would_be_found(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("# Title\nSee [gone](missing.md) and [here](#title) and [no](#nope).\n")
    found = [t for t in links(doc) if not (doc.parent / t.partition("#")[0]).exists()
             or (t.startswith("#") and t[1:] not in anchors(doc))]
    assert found == ["missing.md", "#nope"]
