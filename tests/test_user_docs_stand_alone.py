"""What users read stands on its own: no pointer to the developers' design notes.

Users get the library, its docs/ and its scenario files; the design notes the project started from
are not part of either, so a docstring, a help text, a policy source or a scenario comment that
sends a reader there is a dead end.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN_NOTES = re.compile(r"\b(?:PATHWAY|SCENARIOS|RELIABILITY|ARCHITECTURE|STYLE|HSCT_REFERENCE)\.md\b|\.\./shared/")
USER_FACING = ("states", "persistence", "workflow", "docs", "scenarios", "examples")


def _user_facing_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for folder in USER_FACING:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".yaml", ".yml", ".json"}]
    return files


def test_the_scan_reads_the_library_and_its_docs() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _user_facing_files()}
    assert {"states/chart.py", "docs/commands.md", "scenarios/happy_autologous.yaml"} <= names


def test_no_user_facing_file_points_at_the_design_notes() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
        for path in _user_facing_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if DESIGN_NOTES.search(line)
    ]
    assert offenders == []
