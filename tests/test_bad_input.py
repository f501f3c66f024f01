"""Malformed input (RELIABILITY.md T23, T24, T26; docs/decisions.md "Malformed input is not a
refusal"): wrong types, unknown fields, naive datetimes, absurd doses, unknown commands,
unknown pathways, malformed patient references. Each raises `InvalidCommand` whose problems
name the field path and the rule (or `UnknownPathway`), and nothing is written.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persistence import models
from persistence.chain import canonical_json
from persistence.models import IDEMPOTENCY_KEY_LENGTH
from states.errors import InvalidCommand, PolicyError, Refused, UnknownPathway
from states.policy import POLICY_VERSION_LENGTH, Policy, policy_from_mapping
from states.vocabulary import Phase
from tests.helpers_core import COMMANDS, PATIENT, PHYS, QM, Written, fire, problems, reach, rejected
from tests.walks import WALKS, run_walk
from workflow.clock import ManualClock
from workflow.service import PathwayService
from workflow.validation import MAX_KEY_LENGTH, SUBSEQUENT_KEY_SUFFIX, bounded

NAIVE = datetime(2026, 2, 5, 8, 30)
REGIMEN = COMMANDS["start_conditioning"][1]
REFER = {"patient_ref": PATIENT, "route": "autologous", "graft_source": "pbsc"}


def _payload(command: str, **changes: Any) -> dict[str, Any]:
    """The command's valid payload with `changes` (a value of None drops the field)."""
    merged = {**COMMANDS[command][1], **changes}
    return {k: v for k, v in merged.items() if v is not None}


@pytest.fixture
def pathway(service: PathwayService, clock: ManualClock) -> str:
    """An autologous pathway after its infusion (S01, Day 0 2026-02-04)."""
    return reach(service, clock, "autologous", Phase.AWAITING_ENGRAFTMENT)


def _fire(service: PathwayService, clock: ManualClock, pathway_id: str, command: str, payload: Any) -> InvalidCommand:
    actor = COMMANDS[command][0] if command in COMMANDS else PHYS
    return rejected(
        service, pathway_id, lambda: service.fire(pathway_id, command, payload, actor=actor, at=clock.now())
    )


def _outcome(call: Callable[[], object]) -> object:
    """What `call` returned, or the `InvalidCommand` / `Refused` it raised; anything else escapes."""
    try:
        return call()
    except (InvalidCommand, Refused) as error:
        return error


# --- wrong types, unknown fields, absurd values -----------------------------------------------

INVALID = [
    # wrong types
    ("record_lab", {"anc_x10e9_per_l": "high"}, "payload.anc_x10e9_per_l", "float_type"),
    ("record_lab", {"anc_x10e9_per_l": [0.6]}, "payload.anc_x10e9_per_l", "float_type"),
    ("record_lab", {"anc_x10e9_per_l": 0.6, "method": "guess"}, "payload.method", "enum"),
    ("record_transfusion", {"product": 5}, "payload.product", "literal_error"),
    ("record_chimerism", _payload("record_chimerism", donor_pct="98%"), "payload.donor_pct", "float_type"),
    ("infuse", _payload("infuse", products="DIN-A"), "payload.products", "tuple_type"),
    ("record_adverse_event", _payload("record_adverse_event", grade=2.5), "payload.grade", "int_type"),
    ("hold", {"reason": {"text": "pneumonia"}}, "payload.reason", "string_type"),
    ("hold", ["pneumonia"], "payload", "model_type"),
    # unknown fields, also nested
    ("record_lab", {"anc_x10e9_per_l": 0.6, "anc_unit": "x10e9/L"}, "payload.anc_unit", "extra_forbidden"),
    (
        "start_conditioning",
        _payload("start_conditioning", regimen={**REGIMEN["regimen"], "cycles": 2}),
        "payload.regimen.cycles",
        "extra_forbidden",
    ),
    (
        "infuse",
        _payload(
            "infuse",
            verifiers=[
                {"id": "rn-lee", "role": "infusion_nurse", "badge": "7"},
                {"id": "rn-kim", "role": "infusion_nurse"},
            ],
        ),
        "payload.verifiers.0.badge",
        "extra_forbidden",
    ),
    # fields the library derives
    ("confirm_engraftment", {"recovery_on": "2026-02-05"}, "payload.recovery_on", "derived_field"),
    (
        "start_subsequent_transplant",
        _payload("start_subsequent_transplant", new_pathway_id="x"),
        "payload.new_pathway_id",
        "derived_field",
    ),
    # missing required values
    ("record_collection", {"product_id": "DIN-Z"}, "payload.cd34_x10e6_per_kg", "dose_missing"),
    ("record_lab", {}, "payload.anc_x10e9_per_l", "lab_value_missing"),
    # negative or absurd doses and counts
    (
        "record_collection",
        _payload("record_collection", cd34_x10e6_per_kg=-1),
        "payload.cd34_x10e6_per_kg",
        "greater_than_equal",
    ),
    (
        "record_collection",
        _payload("record_collection", cd34_x10e6_per_kg=1e6),
        "payload.cd34_x10e6_per_kg",
        "less_than_equal",
    ),
    ("record_lab", {"anc_x10e9_per_l": -0.1}, "payload.anc_x10e9_per_l", "greater_than_equal"),
    ("record_lab", {"platelets_x10e9_per_l": 1e6}, "payload.platelets_x10e9_per_l", "less_than_equal"),
    (
        "record_donor_candidate",
        _payload("record_donor_candidate", tnc_x10e7_per_kg=0),
        "payload.tnc_x10e7_per_kg",
        "greater_than",
    ),
    ("cryopreserve_product", _payload("cryopreserve_product", bags=0), "payload.bags", "greater_than_equal"),
    (
        "record_conditioning_dose",
        _payload("record_conditioning_dose", plan_day=-400),
        "payload.plan_day",
        "greater_than_equal",
    ),
    ("record_gvhd_assessment", {"skin_bsa_pct": 150}, "payload.skin_bsa_pct", "less_than_equal"),
    ("record_eligibility", {"evidence": "x" * 5000}, "payload.evidence", "string_too_long"),
    # A plan day the dose record could never match (plan_day is bounded to -30..0).
    (
        "start_conditioning",
        _payload(
            "start_conditioning",
            regimen={**REGIMEN["regimen"], "plan": [{"day": -400, "drug": "melphalan", "dose": "200 mg/m2"}]},
        ),
        "payload.regimen.plan.0.day",
        "greater_than_equal",
    ),
]


@pytest.mark.parametrize(("command", "payload", "path", "rule"), INVALID)
def test_invalid_payloads_name_the_field_and_rule_and_write_nothing(
    service: PathwayService, clock: ManualClock, pathway: str, command: str, payload: Any, path: str, rule: str
) -> None:
    assert (path, rule) in problems(_fire(service, clock, pathway, command, payload))


@pytest.mark.parametrize("value", [math.nan, math.inf, True])
@pytest.mark.parametrize("field", ["cd34_x10e6_per_kg", "tnc_x10e7_per_kg"])
def test_a_dose_must_be_a_finite_number(
    service: PathwayService, clock: ManualClock, pathway: str, field: str, value: Any
) -> None:
    """A boolean is not a CD34+ dose: `true` must not become 1.0 x10^6/kg."""
    error = _fire(service, clock, pathway, "record_collection", {"product_id": "DIN-Z", field: value})
    assert f"payload.{field}" in {p.path for p in error.problems}


# --- time ------------------------------------------------------------------------------------


def test_a_naive_effective_time_is_refused_everywhere(
    service: PathwayService, clock: ManualClock, pathway: str
) -> None:
    for call in (
        lambda: service.fire(
            pathway, "record_lab", {"anc_x10e9_per_l": 0.6}, actor=COMMANDS["record_lab"][0], at=NAIVE
        ),
        lambda: service.can_fire(pathway, "record_lab", {"anc_x10e9_per_l": 0.6}, actor=PHYS, at=NAIVE),
        lambda: service.snapshot(pathway, at=NAIVE),
        lambda: service.state_at(pathway, NAIVE),
    ):
        assert problems(rejected(service, pathway, call)) == {("at", "timezone_aware")}
    assert problems(
        rejected(
            service,
            pathway,
            lambda: service.fire(
                pathway,
                "record_lab",
                {"anc_x10e9_per_l": 0.6},
                actor=COMMANDS["record_lab"][0],
                at="2026-02-05T08:30Z",
            ),
        )
    ) == {("at", "datetime_type")}
    error = rejected(service, None, lambda: service.refer(REFER, actor=PHYS, at=NAIVE))
    assert problems(error) == {("at", "timezone_aware")}


@pytest.mark.parametrize(
    "value",
    [NAIVE, datetime(2026, 3, 10), "2026-03-10T08:30:00", "2026-03-10T00:00:00", 1773100800],
    ids=["naive-datetime", "naive-midnight", "naive-iso", "naive-iso-midnight", "unix-seconds"],
)
def test_a_date_field_takes_a_calendar_date_only(
    service: PathwayService, clock: ManualClock, pathway: str, value: Any
) -> None:
    """A clinical date is a calendar date in the program's zone; a naive datetime (or a count of
    seconds) would silently depend on the sender's clock (PATHWAY.md Words: naive rejected)."""
    payload = _payload("record_donor_idm", drawn_on=value)
    assert "payload.drawn_on" in {p.path for p in _fire(service, clock, pathway, "record_donor_idm", payload).problems}


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ("start_conditioning", "planned_day0"),
        ("select_donor", "planned_collection_on"),
        ("confirm_engraftment", "claimed_on"),
    ],
)
def test_naive_datetimes_in_other_date_fields(
    service: PathwayService, clock: ManualClock, pathway: str, command: str, field: str
) -> None:
    error = _fire(service, clock, pathway, command, _payload(command, **{field: NAIVE}))
    assert f"payload.{field}" in {p.path for p in error.problems}


# --- unknown commands and pathways -----------------------------------------------------------


@pytest.mark.parametrize("command", ["to_conditioning", "teleport", "", "INFUSE", "infuse ", "refer"])
def test_unknown_command_names(service: PathwayService, clock: ManualClock, pathway: str, command: str) -> None:
    assert problems(_fire(service, clock, pathway, command, {})) == {("command", "unknown_command")}


@pytest.mark.parametrize("pathway_id", ["no-such-pathway", str(uuid.UUID(int=7)), "", "x" * 500])
def test_unknown_pathway(service: PathwayService, clock: ManualClock, pathway: str, pathway_id: str) -> None:
    before = Written.of(service, pathway)
    lab = {"anc_x10e9_per_l": 0.6}
    for call in (
        lambda: service.fire(pathway_id, "record_lab", lab, actor=COMMANDS["record_lab"][0], at=clock.now()),
        lambda: service.can_fire(pathway_id, "record_lab", lab, actor=PHYS),
        lambda: service.snapshot(pathway_id),
        lambda: service.state_at(pathway_id, clock.now()),
        lambda: service.history(pathway_id),
    ):
        with pytest.raises(UnknownPathway):
            call()
    assert Written.of(service, pathway) == before


# --- referrals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "patient_ref",
    ["John Smith", "PT", "", "12/03/1961", "PT-8F3A21\n", "-PT-8F3A21", "P" * 65, 8_123_456],
)
def test_a_malformed_patient_ref_creates_no_pathway(
    service: PathwayService, clock: ManualClock, patient_ref: Any
) -> None:
    error = rejected(
        service, None, lambda: service.refer({**REFER, "patient_ref": patient_ref}, actor=PHYS, at=clock.now())
    )
    assert "payload.patient_ref" in {p.path for p in error.problems}
    assert service.pathway_ids() == []


@pytest.mark.parametrize(
    ("changes", "path", "rule"),
    [
        ({"route": "allogeneic"}, "payload.donor_type", "donor_type_missing"),
        ({"donor_type": "matched_sibling"}, "payload.donor_type", "donor_type_for_autologous"),
        ({"route": "allogeneic", "donor_type": "cord_blood"}, "payload.graft_source", "graft_source_inconsistent"),
        ({"route": "syngeneic"}, "payload.route", "enum"),
        ({"name": "Jane Doe"}, "payload.name", "extra_forbidden"),
    ],
)
def test_an_inconsistent_referral_creates_no_pathway(
    service: PathwayService, clock: ManualClock, changes: dict[str, str], path: str, rule: str
) -> None:
    """PATHWAY.md refer: route and donor_type consistent (autologous has no donor_type)."""
    error = rejected(service, None, lambda: service.refer({**REFER, **changes}, actor=PHYS, at=clock.now()))
    assert problems(error) == {(path, rule)}
    assert service.pathway_ids() == []


def test_a_malformed_actor_is_invalid(service: PathwayService, clock: ManualClock, pathway: str) -> None:
    actor = {"id": "dr ross", "role": "surgeon", "name": "Dr Ross"}
    error = rejected(service, pathway, lambda: service.fire(pathway, "discharge", {}, actor=actor, at=clock.now()))
    assert problems(error) == {
        ("actor.id", "string_pattern_mismatch"),
        ("actor.role", "enum"),
        ("actor.name", "extra_forbidden"),
    }


# --- hostile strings (T24) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["pneumonia'); DELETE FROM entries; --", "line\nbreak \u202e reversed", "nul\x00byte", "\U0001f9ea" * 40],
)
def test_a_hostile_reason_is_stored_verbatim_or_rejected(
    service: PathwayService, clock: ManualClock, text: str
) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    before = Written.of(service, pathway_id)
    outcome = _outcome(lambda: fire(service, clock, pathway_id, clock.now(), PHYS, "hold", {"reason": text}))
    if isinstance(outcome, InvalidCommand):
        assert {p.path for p in outcome.problems} == {"payload.reason"}
        assert Written.of(service, pathway_id) == before
        return
    entry = service.history(pathway_id)[-1]
    assert (entry.trigger, entry.reason, entry.payload["reason"]) == ("hold", text.strip(), text.strip())


def test_extreme_dates_raise_only_documented_errors(service: PathwayService, clock: ManualClock) -> None:
    """Year 1 is a valid ISO date but no clinical one: window arithmetic on it must not crash."""
    pathway_id = reach(service, clock, "matched_unrelated", Phase.DONOR_WORKUP)
    idm = {"donor_ref": "DONOR-A", "drawn_on": "0001-01-01", "result": "negative"}
    for command, payload in (("record_donor_idm", idm), ("clear_donor", {"planned_collection_on": "0001-01-01"})):
        before = Written.of(service, pathway_id)
        outcome = _outcome(
            lambda command=command, payload=payload: fire(
                service, clock, pathway_id, clock.now(), COMMANDS[command][0], command, payload
            )
        )
        written = Written.of(service, pathway_id).entries - before.entries
        assert written == (0 if isinstance(outcome, InvalidCommand) else 1)


# --- property: only the documented errors escape, and a rejected command writes nothing --------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats()
    | st.text(max_size=24)
    | st.dates().map(lambda day: day.isoformat())
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def _mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """The valid payload with fields dropped or replaced by junk, and junk fields added."""
    payload = dict(base)
    for key in draw(st.lists(st.sampled_from(sorted(base)), unique=True)) if base else []:
        if draw(st.booleans()):
            del payload[key]
        else:
            payload[key] = draw(JSON_VALUES)
    payload.update(draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=2)))
    return payload


FUZZED = {
    "record_lab": ("autologous", Phase.AWAITING_ENGRAFTMENT),
    "record_collection": ("autologous", Phase.COLLECTION),
    "cryopreserve_product": ("autologous", Phase.COLLECTION),
    "select_donor": ("matched_unrelated", Phase.DONOR_SEARCH),
    "record_donor_candidate": ("matched_unrelated", Phase.DONOR_SEARCH),
    "clear_donor": ("matched_unrelated", Phase.DONOR_WORKUP),
    "hold": ("autologous", Phase.EVALUATION),
    "start_conditioning": ("autologous", Phase.READY_FOR_CONDITIONING),
    "correct_entry": ("autologous", Phase.FOLLOW_UP),
}


def test_random_payloads_raise_only_documented_errors(service: PathwayService, clock: ManualClock) -> None:
    targets: dict[str, tuple[str, datetime]] = {}
    for command, (walk_name, phase) in FUZZED.items():
        walk = WALKS[walk_name]().for_patient(f"PT-{command}")  # a patient has one open pathway
        pathway_id = run_walk(service, clock, walk, until=phase)
        targets[command] = (pathway_id, clock.now())

    @settings(max_examples=60, deadline=None, database=None)
    @given(data=st.data(), command=st.sampled_from(sorted(FUZZED)))
    def attempt(data: st.DataObject, command: str) -> None:
        pathway_id, at = targets[command]
        actor, valid = COMMANDS[command]
        payload = data.draw(_mutated(valid) | JSON_VALUES, label="payload")
        before = Written.of(service, pathway_id)
        outcome = _outcome(lambda: fire(service, clock, pathway_id, at, actor, command, payload))
        if isinstance(outcome, InvalidCommand):
            assert outcome.problems
            assert all(p.path and p.rule for p in outcome.problems)
            assert Written.of(service, pathway_id) == before
        else:  # refused (one refusal entry) or done (one entry)
            assert Written.of(service, pathway_id).entries == before.entries + 1

    attempt()


# --- issue 9: raw exceptions, column limits, bounded payloads (outside tester 6, 7, 9) --------


def _bomb(levels: int, width: int = 9) -> list[Any]:
    """What a YAML alias "billion laughs" document loads as: a few shared lists, exponentially
    many values once expanded (width ** levels strings)."""
    layer: list[Any] = ["lol"] * width
    for _ in range(levels):
        layer = [layer] * width
    return layer


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (_bomb(12), "payload_too_deep"),
        (_bomb(6), "payload_too_large"),
        ("x" * (Policy().max_payload_bytes + 1), "payload_too_large"),
        (10**5000, "number_out_of_range"),
        (2**63, "number_out_of_range"),
        (b"bytes", "invalid-json-value"),
        (_Opaque(), "invalid-json-value"),
        (float("nan"), "finite_number"),
        ("lone \ud800 surrogate", "string_unicode"),
    ],
    ids=["bomb-deep", "bomb-wide", "long-text", "huge-int", "int-2**63", "bytes", "object", "nan", "surrogate"],
)
def test_hostile_correction_changes_are_invalid_and_write_nothing(
    service: PathwayService, clock: ManualClock, value: Any, rule: str
) -> None:
    """No raw exception, no memory blow-up, and no refusal entry holding the expanded value:
    the sequence does not even exist, so a valid correction would be a (logged) refusal."""
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    payload = {"sequence": 99, "changes": {"diagnosis": value}, "reason": "tester"}
    error = rejected(
        service, pathway_id, lambda: service.fire(pathway_id, "correct_entry", payload, actor=QM, at=clock.now())
    )
    assert rule in error.rules


def test_deep_nesting_anywhere_is_invalid_before_validation(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    deep: Any = "x"
    for _ in range(100_000):  # deeper than the interpreter's recursion limit
        deep = [deep]
    error = rejected(
        service, pathway_id, lambda: service.fire(pathway_id, "hold", {"reason": deep}, actor=PHYS, at=clock.now())
    )
    [(path, rule)] = problems(error)
    assert rule == "payload_too_deep"
    assert path.startswith("payload.reason."), "the problem names the field whose value is too deep"


def test_the_payload_limit_is_the_stored_size(service: PathwayService, clock: ManualClock) -> None:
    """A payload just under the limit is judged (here refused: no such entry) and stored whole;
    one just over it is invalid. Size = the canonical JSON an entry stores."""
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    limit = service.policy.max_payload_bytes

    def correction(items: int) -> dict[str, Any]:
        return {"sequence": 99, "changes": {"diagnosis": ["abcdefgh"] * items}, "reason": "tester"}

    def size(items: int) -> int:
        return len(canonical_json(correction(items)))

    under = max(n for n in range(limit // 11 - 50, limit // 11 + 50) if size(n) <= limit)
    with pytest.raises(Refused) as info:
        service.fire(pathway_id, "correct_entry", correction(under), actor=QM, at=clock.now())
    assert info.value.reasons == ("corrected_entry_unknown",)
    assert service.history(pathway_id)[-1].payload == correction(under)
    error = rejected(
        service,
        pathway_id,
        lambda: service.fire(pathway_id, "correct_entry", correction(under + 1), actor=QM, at=clock.now()),
    )
    assert problems(error) == {("payload", "payload_too_large")}


def test_surrogates_in_ids_and_keys_are_not_raw_errors(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    before = Written.of(service, pathway_id)
    with pytest.raises(UnknownPathway):
        service.fire("pw-\ud800", "discharge", {}, actor=PHYS, at=clock.now())
    for key in ("key-\ud800", "key\x00", "key\x1fsubsequent", "k" * (MAX_KEY_LENGTH + 1)):

        def hold(key: str = key) -> object:
            return service.fire(pathway_id, "hold", {"reason": "x"}, actor=PHYS, at=clock.now(), idempotency_key=key)

        assert problems(rejected(service, pathway_id, hold)) == {("idempotency_key", "idempotency_key_invalid")}
    assert Written.of(service, pathway_id) == before


@pytest.mark.parametrize("key", ["K" * MAX_KEY_LENGTH, "K" * 100], ids=["longest", "short"])
def test_a_subsequent_transplants_key_fits_and_collides_with_no_host_key(
    service: PathwayService, clock: ManualClock, key: str
) -> None:
    """The tester's case on PostgreSQL: a valid key on `start_subsequent_transplant` fits the
    column with the derived key of the new pathway; a host key that looks like the old derived
    key (`K#subsequent`, used earlier) does not block `K`."""
    assert MAX_KEY_LENGTH + len(SUBSEQUENT_KEY_SUFFIX) == IDEMPOTENCY_KEY_LENGTH
    pathway_id = reach(service, clock, "autologous", Phase.FOLLOW_UP)
    fire(service, clock, pathway_id, clock.now(), PHYS, "report_relapse", {"method": "pet_ct"})
    if len(key) + len("#subsequent") <= MAX_KEY_LENGTH:
        service.fire(pathway_id, "record_adverse_event", {"type": "mucositis", "grade": 2}, actor=PHYS,
                     at=clock.now(), idempotency_key=f"{key}#subsequent")
    result = service.fire(pathway_id, "start_subsequent_transplant", COMMANDS["start_subsequent_transplant"][1],
                          actor=PHYS, at=clock.now(), idempotency_key=key)
    opened = service.history(result.entry.payload["new_pathway_id"])[0]
    assert opened.idempotency_key == key + SUBSEQUENT_KEY_SUFFIX


@pytest.mark.parametrize(
    "changes",
    [{"timezone": "Europe"}, {"version": "v" * (POLICY_VERSION_LENGTH + 1)}, {"version": "v1\x00"}, {"version": ""}],
)
def test_a_policy_the_database_cannot_hold_is_a_policy_error(changes: dict[str, str]) -> None:
    with pytest.raises(PolicyError):
        policy_from_mapping(changes)


def test_the_policy_version_length_is_the_columns() -> None:
    assert POLICY_VERSION_LENGTH == models.POLICY_VERSION_LENGTH
    assert Policy(version="v" * POLICY_VERSION_LENGTH).version_id == "v" * POLICY_VERSION_LENGTH


def test_reprs_show_no_free_text_or_patient(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = reach(service, clock, "autologous", Phase.EVALUATION)
    secret = "SECRETREASON42"
    result = fire(service, clock, pathway_id, clock.now(), PHYS, "hold", {"reason": secret})
    shown = repr(result) + repr(result.entry) + str(result.entry) + repr(service.history(pathway_id))
    assert secret not in shown
    assert PATIENT not in shown


# --- the size and depth walk itself (workflow.validation.bounded) -------------------------------


def _bounds_problem(data: Any, policy: Policy | None = None) -> tuple[str, str] | None:
    try:
        bounded(data, command="record_lab", policy=policy or Policy())
    except InvalidCommand as error:
        [found] = problems(error)
        return found
    return None


@pytest.mark.parametrize(
    ("data", "found"),
    [
        ({"a": [1, {"b": "x" * 40_000}]}, ("payload.a.1.b", "payload_too_large")),
        ({"a": [{}, {"b\ud800": 1}]}, ("payload.a.1", "string_unicode")),  # a key's problem is its mapping's
        ({"n": [0, 2**64]}, ("payload.n.1", "number_out_of_range")),
        ({"a": [None] * 40_000}, ("payload.a", "payload_too_large")),  # the list alone is over
        # the twelfth list, at depth 12
        ({"d": [[[[[[[[[[[["deep"]]]]]]]]]]]]}, ("payload.d" + ".0" * 11, "payload_too_deep")),
        ({"a": [1, {"b": "x" * 1_000}], "c": True}, None),
    ],
    ids=["large-text", "surrogate-key", "huge-int", "wide-list", "deep", "within"],
)
def test_the_walk_names_the_field_and_the_rule(data: Any, found: tuple[str, str] | None) -> None:
    assert _bounds_problem(data) == found


def test_nesting_deeper_than_the_stack_is_too_deep_under_any_policy() -> None:
    """A policy may allow more nesting than Python's stack can walk: such input is refused as
    too deep, never a raw RecursionError."""
    deep: Any = "x"
    for _ in range(sys.getrecursionlimit() + 10):  # whatever the limit this process runs under
        deep = [deep]
    lenient = Policy(max_payload_depth=10**9, max_payload_bytes=10**9)
    assert _bounds_problem({"d": deep}, lenient) == ("payload", "payload_too_deep")
    assert _bounds_problem({"d": deep}) == ("payload.d" + ".0" * 11, "payload_too_deep")
