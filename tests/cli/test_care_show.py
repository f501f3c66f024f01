"""`hsct pathway show` gives supportive care and GVHD prophylaxis (docs/supportive-care.md), on
pathways the library's scenarios for issue #11 items 11 and 12 leave in a kept database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from freezegun import freeze_time

from tests.cli.conftest import invoke
from workflow.service import PathwayService

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _show(scenario: str, url: str, *fmt: str) -> str:
    run = invoke("scenario", "run", "--db", url, SCENARIOS / scenario)
    assert run.exit_code == 0, run.output
    service = PathwayService(url)
    try:
        (pathway_id,) = service.pathway_ids()
    finally:
        service.engine.dispose()
    with freeze_time("2027-02-01 12:00:00+00:00"):
        result = invoke("pathway", "show", pathway_id, "--db", url, *fmt)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_show_gives_the_supportive_care_of_an_autologous_transplant(sqlite_url: str) -> None:
    care: dict[str, Any] = json.loads(_show("course_auto_supportive_care.yaml", sqlite_url, "--format", "json"))[
        "pathway"
    ]["care"]
    # Admitted 04-20, out 05-07, back 05-12 to 05-14: 17 + 2 inpatient days.
    assert care["length_of_stay_days"] == 19
    assert care["stays"] == [
        {"admitted": "2026-04-20", "discharged": "2026-05-07"},
        {"admitted": "2026-05-12", "discharged": "2026-05-14"},
    ]
    assert care["in_hospital"] is False
    assert care["growth_factor"] == {"agent": "filgrastim", "started": "2026-04-27", "day": "D+5"}
    assert care["infections"] == [
        {"onset": "2026-04-28", "day": "D+6", "organism": "Staphylococcus epidermidis", "site": "central_line"}
    ]
    assert (care["mucositis_peak_who_grade"], care["mucositis_peak_day"], care["mucositis_latest_who_grade"]) == (
        3,
        "D+7",
        0,
    )
    assert care["transfusions"] == {"red_cells": 1, "platelets": 1}
    assert care["gvhd_prophylaxis"] == {}


def test_show_prints_prophylaxis_and_stays_as_lines(sqlite_url: str) -> None:
    out = _show("course_haplo_ptcy_gvhd_prophylaxis.yaml", sqlite_url)
    assert "GVHD prophylaxis: ptcy D+3, D+4: 2 dose(s); tacrolimus from D+5: 3 dose(s); mmf from D+5: 3 dose(s)" in out
    # Items never recorded are left out rather than shown as zero.
    assert "length of stay" not in out
    assert "transfusions: red cells 0, platelets 1" in out
    assert "mucositis" not in out
