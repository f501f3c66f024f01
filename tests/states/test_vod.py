"""VOD/SOS by the named criteria set (HSCT_REFERENCE.md §2 "VOD/SOS", source [F:VOD])."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.facts import VodAssessment
from states.vod import ebmt_onset, vod_diagnosed

AT = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
Criteria = Literal["baltimore", "modified_seattle", "ebmt_adult"]


def vod(criteria: Criteria, bilirubin: float, **kw: Any) -> VodAssessment:
    return VodAssessment(at=AT, criteria=criteria, bilirubin_mg_per_dl=bilirubin, **kw)


PAINFUL = {"hepatomegaly": True, "ruq_pain": True}


# --- Baltimore: bilirubin >= 2 plus >= 2 of painful hepatomegaly, weight gain > 5 %, ascites; by D+21


@pytest.mark.parametrize(
    ("bilirubin", "findings", "expected"),
    [
        (2.0, {**PAINFUL, "ascites": True}, True),
        (1.9, {**PAINFUL, "ascites": True}, False),  # bilirubin is mandatory
        (2.0, {"ascites": True}, False),  # one finding only
        (2.0, {"ascites": True, "weight_gain_pct": 5.0}, False),  # weight gain must exceed 5 %
        (2.0, {"ascites": True, "weight_gain_pct": 5.1}, True),
        (2.5, {**PAINFUL, "weight_gain_pct": 6.0}, True),
        (2.0, {"hepatomegaly": True, "ascites": True}, False),  # hepatomegaly must be painful
        (2.0, {"ruq_pain": True, "ascites": True}, False),
        (8.0, {}, False),
    ],
)
def test_baltimore_findings(bilirubin: float, findings: dict[str, Any], expected: bool) -> None:
    assert vod_diagnosed(vod("baltimore", bilirubin, **findings), 10) is expected


def test_baltimore_window_ends_on_day_21() -> None:
    a = vod("baltimore", 3.0, ascites=True, weight_gain_pct=7.0)
    assert vod_diagnosed(a, 21) is True
    assert vod_diagnosed(a, 22) is False


# --- modified Seattle: >= 2 of bilirubin > 2, hepatomegaly or RUQ pain, weight gain > 2 %; by D+20


@pytest.mark.parametrize(
    ("bilirubin", "findings", "expected"),
    [
        (2.1, {"ruq_pain": True}, True),
        (2.1, {"hepatomegaly": True}, True),
        (2.0, {"hepatomegaly": True}, False),  # bilirubin must exceed 2
        (0.8, {"hepatomegaly": True, "weight_gain_pct": 2.1}, True),  # bilirubin not required
        (0.8, {"hepatomegaly": True, "weight_gain_pct": 2.0}, False),
        (0.8, {"hepatomegaly": True, "ruq_pain": True}, False),  # one finding, counted once
        (3.0, {"ascites": True}, False),  # ascites is not a Seattle finding
        (2.5, {"weight_gain_pct": 3.0}, True),
    ],
)
def test_modified_seattle_findings(bilirubin: float, findings: dict[str, Any], expected: bool) -> None:
    assert vod_diagnosed(vod("modified_seattle", bilirubin, **findings), 10) is expected


def test_modified_seattle_window_ends_on_day_20() -> None:
    a = vod("modified_seattle", 2.5, hepatomegaly=True)
    assert vod_diagnosed(a, 20) is True
    assert vod_diagnosed(a, 21) is False


# --- EBMT adult: classical (<= D+21) by Baltimore; late (> D+21) accepted by the same criteria


@pytest.mark.parametrize("day", [5, 21, 22, 60, 100])
def test_ebmt_adult_accepts_classical_and_late_onset(day: int) -> None:
    assert vod_diagnosed(vod("ebmt_adult", 2.0, ascites=True, weight_gain_pct=6.0), day) is True
    assert vod_diagnosed(vod("ebmt_adult", 1.9, ascites=True, weight_gain_pct=6.0), day) is False
    assert vod_diagnosed(vod("ebmt_adult", 2.0, ascites=True, weight_gain_pct=3.0), day) is False


def test_ebmt_onset_classes() -> None:
    assert ebmt_onset(21) == "classical"
    assert ebmt_onset(22) == "late"


findings_ = st.fixed_dictionaries(
    {
        "bilirubin_mg_per_dl": st.floats(0, 20),
        "hepatomegaly": st.booleans(),
        "ruq_pain": st.booleans(),
        "ascites": st.booleans(),
        "weight_gain_pct": st.floats(0, 20),
    }
)


@given(findings_, st.integers(-10, 120))
def test_ebmt_agrees_with_baltimore_in_the_classical_window(findings: dict[str, Any], day: int) -> None:
    ebmt = vod_diagnosed(VodAssessment(at=AT, criteria="ebmt_adult", **findings), day)
    baltimore = vod_diagnosed(VodAssessment(at=AT, criteria="baltimore", **findings), day)
    if day <= 21:
        assert ebmt == baltimore
    else:
        assert baltimore is False


@given(findings_, st.integers(-10, 120))
def test_baltimore_implies_modified_seattle_when_bilirubin_exceeds_2(
    findings: dict[str, Any], day: int
) -> None:
    # Baltimore's findings with bilirubin > 2 and painful hepatomegaly or weight gain > 5 % always
    # give two Seattle findings; only an ascites-based Baltimore diagnosis can miss Seattle.
    baltimore = vod_diagnosed(VodAssessment(at=AT, criteria="baltimore", **findings), day)
    seattle = vod_diagnosed(VodAssessment(at=AT, criteria="modified_seattle", **findings), day)
    strong = (findings["hepatomegaly"] and findings["ruq_pain"]) or findings["weight_gain_pct"] > 5
    if baltimore and day <= 20 and findings["bilirubin_mg_per_dl"] > 2 and strong:
        assert seattle
