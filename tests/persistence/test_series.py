"""Growing series (labs, transfusions) live in rows beside the snapshot, which commits to them.

The snapshot text a command rewrites stays the same size however many values a pathway holds
(the cost of a command does not grow with its history), and the rows are bound to the head
entry through the series heads in that text: a changed, missing or extra row is refused on
load and reported by verification (tests/audit/test_tamper.py covers the latter).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from persistence.models import fact_series_table, pathways_table
from persistence.series import SERIES_FIELDS, SeriesMismatch, assemble, heads_in, split_facts, without_series
from persistence.store import Store
from states.errors import IntegrityError
from states.facts import LabValue, PathwayFacts, Transfusion
from states.fold import replay
from states.vocabulary import Phase
from tests.audit.conftest import privileged
from tests.audit.seeding import clone
from tests.helpers_core import COMMANDS, SERIES_RECORDING
from tests.invariants import assert_invariants
from tests.states.guard_attempt import snapshot
from tests.walks import LAB, WALKS, played, run_walk
from workflow.audit import verify_log
from workflow.clock import ManualClock
from workflow.service import PathwayService

AT = datetime(2026, 5, 1, 7, tzinfo=UTC)


def _facts(labs: int) -> PathwayFacts:
    values = tuple(LabValue(at=AT + timedelta(days=n), anc_x10e9_per_l=0.1 * n, sequence=n) for n in range(labs))
    return snapshot(phase="awaiting_engraftment", route="autologous", donor_type=None, labs=values)


def _rows(writes: tuple) -> dict[str, list[str]]:  # type: ignore[type-arg]
    rows: dict[str, list[str]] = {}
    for write in writes:
        if write.replace:
            rows[write.field] = []
        rows.setdefault(write.field, []).extend(write.values)
    return rows


def test_the_rows_put_back_give_the_same_facts() -> None:
    facts = _facts(3)
    stored = split_facts(facts, None, None)
    assert '"labs":[{' not in stored.text  # only its head: count and running hash
    assert PathwayFacts.model_validate_json(assemble(stored.text, _rows(stored.writes))) == facts


def test_recording_a_value_writes_one_row_and_leaves_the_rest_of_the_snapshot() -> None:
    before = _facts(3)
    first = split_facts(before, None, None)
    after = before.model_copy(update={"labs": (*before.labs, LabValue(at=AT, platelets_x10e9_per_l=25))})
    second = split_facts(after, before, first.text)
    [write] = second.writes
    assert (write.field, write.start, len(write.values), write.replace) == ("labs", 3, 1, False)
    assert heads_in(second.text)["labs"].count == 4
    assert second.text.split("},", 1)[1] == first.text.split("},", 1)[1]
    rows = {"labs": _rows(first.writes)["labs"] + list(write.values)}
    assert PathwayFacts.model_validate_json(assemble(second.text, rows)) == after


def test_the_heads_member_is_the_json_a_reader_parses() -> None:
    """The heads are spelled by hand (no encoder per command): the same text json.dumps
    writes, and read back (through a cache of parsed members) as the heads written."""
    given = (Transfusion(at=AT, product="platelets"),)
    text = split_facts(_facts(3).model_copy(update={"transfusions": given}), None, None).text
    member = text[len('{"series_heads":') : text.index("}") + 1]
    heads = heads_in(text)
    assert member == json.dumps({k: [h.count, h.head] for k, h in heads.items()}, separators=(",", ":"))
    assert {name: head.count for name, head in heads.items()} == {"labs": 3, "transfusions": 1}
    assert heads_in(text) is heads  # parsed once
    with pytest.raises(TypeError):
        heads["labs"] = heads["labs"]  # type: ignore[index]  # shared between readers: read-only


def test_a_replayed_series_is_rewritten_only_when_a_value_changed() -> None:
    """A correction replays the log into new value objects: equal values keep their rows; a
    corrected value (not the last) rewrites the series whole."""
    before = _facts(3)
    first = split_facts(before, None, None)
    replayed = PathwayFacts.model_validate_json(before.model_dump_json())
    again = split_facts(replayed, before, first.text)
    assert (again.text, again.writes) == (first.text, ())
    corrected = replayed.model_copy(
        update={
            "labs": (replayed.labs[0], replayed.labs[1].model_copy(update={"anc_x10e9_per_l": 0.5}), replayed.labs[2])
        }
    )
    second = split_facts(corrected, before, first.text)
    [write] = second.writes
    assert (write.start, len(write.values), write.replace) == (0, 3, True)
    assert PathwayFacts.model_validate_json(assemble(second.text, _rows(second.writes))) == corrected


def _whole(facts: PathwayFacts) -> str:
    """The snapshot text from the model's own serializer (the series left out)."""
    return PathwayFacts.__pydantic_serializer__.to_json(facts, exclude=set(SERIES_FIELDS)).decode()


def test_only_the_fields_a_command_changed_are_serialised_again() -> None:
    """Given the members of the facts before, a field still holding the same object keeps its
    member as given (here a marker, to show it is not made again); a changed field gets a new one."""
    before = _facts(0)
    first = split_facts(before, None, None)
    assert first.text == _whole(before)
    after = before.model_copy(update={"adverse_events": before.adverse_events + 1})
    known = tuple(b'"discharged":"kept"' if m.startswith(b'"discharged":') else m for m in first.members)
    marked = split_facts(after, before, first.text, known).text
    assert '"discharged":"kept"' in marked
    assert f'"adverse_events":{before.adverse_events + 1}' in marked
    assert split_facts(after, before, first.text, first.members).text == _whole(after)


@pytest.mark.parametrize("route", sorted(WALKS))
def test_every_snapshot_a_walk_stores_is_the_whole_fold_of_its_log(
    service: PathwayService, clock: ManualClock, route: str
) -> None:
    """Each command stores a text made from the members the previous one kept: byte for byte
    what serialising those facts as a whole gives, and they are the fold of the log, at every
    step of every route. (The fold is compared as an object: a replay reads payloads back from
    canonical JSON, whose sorted keys can order a dict unlike the payload as it was sent.)"""
    for pathway_id, _, _ in played(service, clock, WALKS[route]()):
        text = without_series(_stored_text(service, pathway_id))
        stored = PathwayFacts.model_validate_json(text)
        assert text == _whole(stored)
        assert stored == replay(service.history(pathway_id)).model_copy(update=dict.fromkeys(SERIES_FIELDS, ()))


def test_a_snapshot_with_its_series_inline_is_read_as_it_stands_and_moved_out_on_write() -> None:
    facts = _facts(2)
    inline = facts.model_dump_json()
    assert heads_in(inline) == {}
    assert assemble(inline, {}) == inline
    [write] = split_facts(facts, facts, inline).writes
    assert (write.field, write.start, len(write.values), write.replace) == ("labs", 0, 2, True)


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: {"labs": [rows["labs"][0].replace('"sequence":0', '"sequence":7'), *rows["labs"][1:]]},
        lambda rows: {"labs": rows["labs"][:-1]},
        lambda rows: {"labs": [*rows["labs"], rows["labs"][0]]},
        lambda rows: {"labs": list(reversed(rows["labs"]))},
        lambda rows: {**rows, "transfusions": rows["labs"][:1]},
    ],
    ids=["value changed", "row missing", "row added", "rows reordered", "a series not committed to"],
)
def test_rows_other_than_those_committed_to_are_refused(change) -> None:  # type: ignore[no-untyped-def]
    stored = split_facts(_facts(3), None, None)
    with pytest.raises(SeriesMismatch):
        assemble(stored.text, change(_rows(stored.writes)))


def _stored_text(service: PathwayService, pathway_id: str) -> str:
    with service.engine.connect() as connection:
        return str(connection.scalar(sa.select(pathways_table.c.facts).where(pathways_table.c.id == pathway_id)))


def _labs_on(service: PathwayService, clock: ManualClock, pathway_id: str, count: int) -> str:
    for _ in range(count):
        clock.set(clock.now() + timedelta(hours=6))
        service.fire(pathway_id, "record_lab", {"anc_x10e9_per_l": 0.1}, actor=LAB, at=clock.now())
    return _stored_text(service, pathway_id)


def test_every_series_has_a_command_recording_it() -> None:
    assert set(SERIES_RECORDING) == set(SERIES_FIELDS)


@pytest.mark.parametrize("field", sorted(SERIES_RECORDING))
def test_the_snapshot_does_not_grow_with_a_series(service: PathwayService, clock: ManualClock, field: str) -> None:
    """Forty more values of a series add forty rows and leave the snapshot a command rewrites
    as long as it was (only the count's digits, and the running hash, change)."""
    command, phase = SERIES_RECORDING[field]
    actor, payload = COMMANDS[command]
    pathway_id = run_walk(service, clock, WALKS["matched_sibling"](), until=phase)

    def recorded(count: int) -> str:
        for _ in range(count):
            clock.set(clock.now() + timedelta(hours=6))
            service.fire(pathway_id, command, payload, actor=actor, at=clock.now())
        return _stored_text(service, pathway_id)

    few, many = recorded(2), recorded(40)
    assert heads_in(many)[field].count == heads_in(few)[field].count + 40
    assert abs(len(many) - len(few)) <= 2
    assert len(getattr(service.snapshot(pathway_id).facts, field)) == heads_in(many)[field].count
    assert_invariants(service.engine)


def test_a_changed_row_is_refused_on_load(db_url: str, clock: ManualClock) -> None:
    service = PathwayService(db_url, clock=clock, auto_upgrade=True)
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.AWAITING_ENGRAFTMENT)
    _labs_on(service, clock, pathway_id, 3)
    table = fact_series_table
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(table)
            .where(table.c.pathway_id == pathway_id, table.c.position == 1)
            .values(value=sa.func.replace(table.c.value, '"anc_x10e9_per_l":0.1', '"anc_x10e9_per_l":0.9'))
        )
    service.engine.dispose()
    fresh = PathwayService(db_url, clock=clock)  # nothing cached: reads the rows
    try:
        with pytest.raises(IntegrityError):
            fresh.snapshot(pathway_id)
        with pytest.raises(IntegrityError):
            fresh.fire(pathway_id, "record_lab", {"anc_x10e9_per_l": 0.2}, actor=LAB, at=clock.now())
    finally:
        fresh.engine.dispose()


def test_verify_reads_the_rows_beside_the_entries_past_a_bad_pathway(
    service: PathwayService, clock: ManualClock
) -> None:
    """Series rows are read in one stream beside the entries: a pathway whose check fails early
    (its row's version edited) leaves its rows unread, and the pathways after it still find
    theirs; rows of no pathway are reported, not taken for the next pathway's."""
    ids = sorted(run_walk(service, clock, WALKS["autologous"]().for_patient(f"PT-SERIES{n}")) for n in range(3))
    assert verify_log(service).ok
    with privileged(service.engine) as sql:
        sql("UPDATE pathways SET version = version + 1 WHERE id = ?", ids[1])
    found = verify_log(service)
    assert [(p.pathway_id, p.check) for p in found.problems] == [(ids[1], "pathway")]
    with privileged(service.engine) as sql:
        sql("UPDATE pathways SET version = version - 1 WHERE id = ?", ids[1])
        if service.engine.dialect.name == "postgresql":
            sql("ALTER TABLE fact_series DROP CONSTRAINT fk_fact_series_pathway_id_pathways")
        sql(
            "INSERT INTO fact_series (pathway_id, field, position, value) "
            "SELECT ?, field, position, value FROM fact_series WHERE pathway_id = ?",
            "0" + ids[2][1:],
            ids[2],
        )
    found = verify_log(service)
    assert [(p.pathway_id, p.detail) for p in found.problems] == [
        ("0" + ids[2][1:], "series rows whose pathway row is missing")
    ]


def test_a_corrected_lab_value_rewrites_the_rows_the_snapshot_commits_to(
    service: PathwayService, clock: ManualClock
) -> None:
    """A correction replays the log: the corrected value replaces the stored row (the others
    stay), the stored facts are still the replay, and a fresh process reads the corrected value."""
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.AWAITING_ENGRAFTMENT)
    _labs_on(service, clock, pathway_id, 3)
    target = next(e.sequence for e in service.history(pathway_id) if e.trigger == "record_lab")
    clock.set(clock.now() + timedelta(hours=1))
    change = {"sequence": target, "changes": {"anc_x10e9_per_l": 0.7}, "reason": "transcription error"}
    service.fire(pathway_id, "correct_entry", change, actor=LAB, at=clock.now())
    assert_invariants(service.engine)
    fresh = PathwayService(service.engine.url.render_as_string(hide_password=False), clock=clock)
    try:
        labs = fresh.snapshot(pathway_id).facts.labs
    finally:
        fresh.engine.dispose()
    assert [lab.anc_x10e9_per_l for lab in labs][:2] == [0.7, 0.1]


def test_a_snapshot_from_before_the_rows_is_read_then_moved_out(service: PathwayService, clock: ManualClock) -> None:
    """A pathway written before migration 0007 (its labs inside the snapshot text, committed to
    as such) loads as it stands; its next command moves the labs into rows."""
    template = run_walk(service, clock, WALKS["autologous"](), until=Phase.AWAITING_ENGRAFTMENT)
    _labs_on(service, clock, template, 3)
    with Session(service.engine) as session, session.begin():
        store = Store(session)
        record = store.load(template)
        assert record is not None
        old = clone(store, store.entries(template), record, patient_ref="PT-SERIES9", inline=True)
    assert '"labs":[{' in _stored_text(service, old)
    assert len(service.snapshot(old).facts.labs) == 3
    _labs_on(service, clock, old, 1)
    assert heads_in(_stored_text(service, old))["labs"].count == 4
    assert_invariants(service.engine)
