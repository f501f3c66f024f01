"""The patient timeline picture (workflow/timeline.py) and the clinical-date view it draws from
(`PathwayService.state_on`).

Expectations come from the autologous walk (tests/walks.py: Day 0 2026-02-04, conditioning from
2026-02-02, ANC 1.2 / 0.6 / 0.02 on Days +1 / +3 / +5, a platelet transfusion on Day +8, ANC
0.6 / 1.6 / 2.6 and platelets 24 / 29 / 34 on Days +11..+13) read with the published rules:
neutrophil recovery is the first of 3 values >= 0.5 x10^9/L on different days after the nadir
[F:CIBMTR-ANC]; platelet recovery needs 3 values >= 20 x10^9/L with no platelet transfusion in
the 7 days ending that day [F:CIBMTR-PLT].
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from states.errors import BeforeFirstEntry, HsctError, InvalidCommand, UnknownPathway
from states.policy import Policy
from states.vocabulary import Phase
from tests.walks import LAB, PATIENT, WALKS, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService
from workflow.timeline import Band, Mark, Point, TimelineData, render, timeline_data

DAY0 = date(2026, 2, 4)
QM = {"id": "qm-1", "role": "quality_manager"}


def _day(n: int, hour: int = 9) -> datetime:
    return datetime.combine(DAY0 + timedelta(days=n), datetime.min.time(), tzinfo=UTC).replace(hour=hour)


def _walked(service: PathwayService, clock: ManualClock) -> str:
    return run_walk(service, clock, WALKS["autologous"]())


def test_series_and_markers_of_the_autologous_walk(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = _walked(service, clock)
    data = timeline_data(service.snapshot(pathway_id), service.history(pathway_id), service.policy)
    assert data.anchor == DAY0
    assert data.anc == tuple(Point(d, v) for d, v in [(1, 1.2), (3, 0.6), (5, 0.02), (11, 0.6), (12, 1.6),
                                                       (13, 2.6)])
    assert [p.value for p in data.platelets] == [40, 25, 9, 24, 29, 34]
    assert (data.anc_threshold, data.platelet_threshold) == (0.5, 20)
    # ANC >= 0.5 on Days +11, +12, +13 after the Day +5 nadir: recovery on Day +11. The Day +8
    # platelet transfusion lies within 7 days of each value >= 20: no platelet recovery yet.
    assert data.recoveries == (Mark(11, "ANC recovery D+11"),)
    assert data.infusions == (Mark(0, "Day 0 infusion"),)
    assert data.transfusions == (Mark(8, "platelets transfusion"),)
    # conditioning began on Day -2; the axis reaches the Day +100 time point
    assert (data.first_day, data.last_day) == (-2, 100)
    assert data.phases == (
        Band(-2, 0, Phase.CONDITIONING),
        Band(0, 14, Phase.AWAITING_ENGRAFTMENT),
        Band(14, 100, Phase.FOLLOW_UP),
    )
    # The walk sent no Pre-TED form, due by Day 0 [F:CIBMTR-2400]; on Day +100 the Day 100 form opens.
    assert Mark(0, "overdue: pre_transplant_form") in data.milestones
    assert Mark(100, "due: post_transplant_form_day100") in data.milestones
    assert PATIENT not in data.title


def test_thresholds_and_recoveries_follow_the_policy(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = _walked(service, clock)
    strict = Policy(anc_recovery_x10e9_per_l=1.0, platelet_transfusion_free_days=1)
    data = timeline_data(service.snapshot(pathway_id), service.history(pathway_id), strict)
    assert data.anc_threshold == 1.0
    # ANC >= 1.0 after the nadir only on Days +12 and +13: two values, no recovery. With a one-day
    # transfusion-free window the platelets recover on Day +11 (24, 29, 34).
    assert data.recoveries == (Mark(11, "platelet recovery D+11"),)


def test_the_axis_reaches_past_day_100_when_the_data_does(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.FOLLOW_UP)
    clock.set(_day(130))
    service.fire(pathway_id, "record_lab", {"anc_x10e9_per_l": 3.1}, actor=LAB, at=_day(130))
    data = timeline_data(service.snapshot(pathway_id), service.history(pathway_id), service.policy)
    assert data.last_day >= 130
    assert data.anc[-1] == Point(130, 3.1)


# --- the clinical-date view ------------------------------------------------------------------


def test_state_on_takes_late_entries_and_later_corrections(service: PathwayService, clock: ManualClock) -> None:
    """`state_on` (effective by that day, known now) against `state_at` (recorded by then)."""
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.FOLLOW_UP)  # Day +14
    day11_lab = next(e for e in service.history(pathway_id) if e.trigger == "record_lab"
                     and e.effective_at == _day(11, 7))
    clock.set(_day(20))
    service.fire(pathway_id, "correct_entry",
                 {"sequence": day11_lab.sequence, "changes": {"anc_x10e9_per_l": 0.4}, "reason": "wrong sample"},
                 actor=QM, at=_day(20))
    # a Day +14 count recorded late, on Day +20
    service.fire(pathway_id, "record_lab", {"anc_x10e9_per_l": 1.8}, actor=LAB, at=_day(14, 7))

    recorded_then = service.state_at(pathway_id, _day(13, 23))
    assert recorded_then.neutrophil_recovery_on == DAY0 + timedelta(days=11)
    # Known now: Day +11 was 0.4, so by Day +13 only Days +12 and +13 reach 0.5 (two values).
    day13 = service.state_on(pathway_id, DAY0 + timedelta(days=13))
    assert day13.neutrophil_recovery_on is None
    assert day13.phase is Phase.AWAITING_ENGRAFTMENT
    assert day13.day_label == "D+13"
    # The late Day +14 count makes three: recovery on Day +12.
    day14 = service.state_on(pathway_id, DAY0 + timedelta(days=14))
    assert day14.neutrophil_recovery_on == DAY0 + timedelta(days=12)
    assert day14.phase is Phase.FOLLOW_UP
    assert any(lab.anc_x10e9_per_l == 1.8 for lab in day14.facts.labs)
    assert not any(lab.anc_x10e9_per_l == 1.8 for lab in day13.facts.labs)


def test_state_on_before_the_referral_and_on_an_unknown_pathway(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.EVALUATION)
    with pytest.raises(BeforeFirstEntry, match="2026-01-05"):
        service.state_on(pathway_id, date(2026, 1, 4))  # the walk refers on 2026-01-05
    assert service.state_on(pathway_id, date(2026, 1, 5)).phase is Phase.REFERRED
    with pytest.raises(UnknownPathway):
        service.state_on("no-such-pathway", date(2026, 1, 5))


# --- files -----------------------------------------------------------------------------------


@pytest.fixture
def autologous(tmp_path: Path) -> tuple[PathwayService, str]:
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    service = PathwayService(f"sqlite:///{tmp_path}/t.sqlite", clock=clock)
    return service, _walked(service, clock)


def _data(autologous: tuple[PathwayService, str]) -> TimelineData:
    service, pathway_id = autologous
    return timeline_data(service.snapshot(pathway_id), service.history(pathway_id), service.policy)


def test_render_writes_each_format(autologous: tuple[PathwayService, str], tmp_path: Path) -> None:
    data = _data(autologous)
    for suffix in (".svg", ".png", ".html"):
        render(data, tmp_path / f"t{suffix}")
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "t.svg").read_text()
    assert "ANC recovery D+11" in svg  # text kept as text
    page = (tmp_path / "t.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    for loads_something in ("<script", "<link", "<img", 'href="http', "src="):  # self-contained
        assert loads_something not in page
    with pytest.raises(HsctError, match=r"\.html"):
        render(data, tmp_path / "t.pdf")


def test_missing_matplotlib_gives_the_install_hint(
    autologous: tuple[PathwayService, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _data(autologous)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(HsctError, match=r"hsct-pathway\[timeline\]"):
        render(data, tmp_path / "t.svg")


def test_html_in_headless_chromium_shows_axes_and_recovery(
    autologous: tuple[PathwayService, str], tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium): the browser check did not run")
    page = tmp_path / "timeline.html"
    render(_data(autologous), page)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1400,1100", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    picture = dom[dom.index("<svg"):dom.index("</svg>")]  # the drawing itself, not the legend below it
    for text in ("ANC (x10^9/L)", "Platelets (x10^9/L)", "Day (Day 0 = infusion 2026-02-04)",
                 "ANC recovery D+11", "recovery threshold 0.5", "recovery threshold 20", "D+14"):
        assert text in picture, text
    assert "platelet recovery D" not in dom
    assert PATIENT not in dom


def test_state_on_takes_a_date_not_a_time(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.EVALUATION)
    with pytest.raises(InvalidCommand) as caught:
        service.state_on(pathway_id, datetime(2026, 1, 6, 9, tzinfo=UTC))
    assert [p.rule for p in caught.value.problems] == ["date_only"]
