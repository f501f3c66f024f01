"""Every reason code the library can refuse with is documented with its rule and source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "reason-codes.md").read_text(encoding="utf-8")
SOURCES = [
    *sorted((ROOT / "states").glob("*.py")),
    *(ROOT / "workflow" / name for name in ("service.py", "corrections.py", "validation.py")),
]

CODE = r"\"([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\""
# Literal codes: arguments of refuse(...), appended to or returned as a reasons tuple, module
# constants in UPPER_CASE, custom validation rules.
SINGLE = [
    re.compile(r"reasons\.append\(\s*" + CODE),
    re.compile(r"return \(" + CODE + r",\)"),
    re.compile(r"^[A-Z][A-Z0-9_]+ = " + CODE + r"$", re.MULTILINE),
    re.compile(r"PydanticCustomError\(\s*" + CODE),
    re.compile(r"FieldProblem\([^,]+,\s*" + CODE),
]
REFUSE = re.compile(r"refuse\(([^()]*)\)")


def codes_in_code() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for pattern in SINGLE:
            found.update(pattern.findall(text))
        for args in REFUSE.findall(text):
            found.update(re.findall(CODE, args))
    return found


def test_codes_are_found() -> None:
    # The scan itself must see well-known codes of each kind, or it would pass vacuously.
    codes = codes_in_code()
    assert {"insufficient_cd34_dose", "role_not_permitted", "donor_idm_stale", "hla_match_insufficient"} <= codes
    assert {"corrected_entry_unknown", "donor_type_missing", "unknown_command"} <= codes


def test_every_code_is_documented() -> None:
    missing = sorted(code for code in codes_in_code() if f"`{code}`" not in DOC)
    assert missing == []
