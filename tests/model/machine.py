"""T27: a hypothesis state machine over `PathwayService`, checked against tests/model/expectations.py.

Rules: referrals of a few patients along the clinical walks of tests/walks.py, every command of
`CHART` (read when the rules run, so new commands join by themselves) with valid, mutated and
garbage payloads by any role at any of a few telling times, clock jumps, restarts on the same
database, commands in a host transaction that is rolled back, idempotent re-sends (and a key
reused for another command) and corrections. After every step: I1-I5 with facts == replay(log)
(tests/invariants.py), and every pathway's phase, entry count, Day 0 and products as modelled.
With `HSCT_MODEL_REPORT=FILE` each example appends a JSON line of its counts (invariant checks, one
after each step and one at the start; outcomes by kind) to
FILE: the figures docs/testing.md reports for a long run come from there.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy.orm import Session

from states.chart import CHART
from states.command_names import CommandName
from states.errors import IdempotencyMisuse, InvalidCommand, Refused
from states.policy import Policy
from states.vocabulary import Role
from tests.fuzz.strategies import mutated, values
from tests.helpers_core import COMMANDS, PHYS
from tests.invariants import assert_invariants
from tests.model.expectations import WALK_EPOCH, Expected, moved
from tests.walks import WALKS
from workflow.clock import ManualClock
from workflow.service import PathwayService, Result

PG_ENV = "HSCT_TEST_POSTGRES_URL"
REPORT_ENV = "HSCT_MODEL_REPORT"
PATIENTS = ("PT-MODEL0001", "PT-MODEL0002", "PT-MODEL0003")
START = datetime(2026, 1, 5, 8, tzinfo=UTC)
POLICY = Policy()
TOLERANCE = timedelta(minutes=POLICY.future_tolerance_minutes)
Actor = Mapping[str, str]


def command_name(name: str) -> CommandName:
    """A command of `CHART`, read at run time: commands added to the chart take part unlisted."""
    assert name in CHART.commands, name
    return cast("CommandName", name)


def _valid_payloads() -> dict[str, list[tuple[Actor, dict[str, Any]]]]:
    """A permitted actor and a well-formed payload for each command that has one: the core
    suite's table and every step of every walk (commands without one are fired with `{}`)."""
    pool: dict[str, list[tuple[Actor, dict[str, Any]]]] = {}
    for command, (actor, payload) in COMMANDS.items():
        pool.setdefault(command, []).append((actor, payload))
    for make in WALKS.values():
        for _, actor, command, payload in make().steps:
            pool.setdefault(command, []).append((actor, payload))
    return pool


VALID = _valid_payloads()


class Database:
    """A database of its own for one example: a SQLite file, or a PostgreSQL schema."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.folder: str | None = None
        self.schema: str | None = None
        if backend == "sqlite":
            self.folder = tempfile.mkdtemp(prefix="hsct-model-")
            self.url = f"sqlite:///{self.folder}/model.sqlite"
            return
        base = os.environ[PG_ENV]
        self.schema = f"m_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE SCHEMA "{self.schema}"')
        joiner = "&" if "?" in base else "?"
        self.url = f"{base}{joiner}options=-csearch_path%3D{self.schema}"

    def _admin(self, statement: str) -> None:
        admin = sa.create_engine(os.environ[PG_ENV])
        try:
            with admin.begin() as connection:
                connection.execute(sa.text(statement))
        finally:
            admin.dispose()

    def drop(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self.schema is not None:
            self._admin(f'DROP SCHEMA "{self.schema}" CASCADE')


@dataclass
class Outcome:
    """What one attempt did: a result, a refusal, or an error that writes nothing."""

    result: Result | None = None
    refused: Refused | None = None
    invalid: InvalidCommand | None = None
    misuse: IdempotencyMisuse | None = None

    @property
    def kind(self) -> str:
        """accepted, replayed, refused, invalid or misuse: what the explore report counts."""
        if self.result is not None:
            return "replayed" if self.result.replayed else "accepted"
        return "refused" if self.refused is not None else "invalid" if self.invalid is not None else "misuse"

    @property
    def written(self) -> int:
        """Entries the attempt appended to its pathway (a replayed result appends none)."""
        if self.result is not None:
            return 0 if self.result.replayed else 1
        return 1 if self.refused is not None and self.refused.sequence is not None else 0


def attempt(call: Callable[[], Result]) -> Outcome:
    """Run a command; the library's documented outcomes are caught, anything else fails the test."""
    try:
        return Outcome(result=call())
    except Refused as refusal:
        return Outcome(refused=refusal)
    except InvalidCommand as error:
        return Outcome(invalid=error)
    except IdempotencyMisuse as error:
        return Outcome(misuse=error)


@dataclass(frozen=True)
class Keyed:
    """The last command sent with an idempotency key, and what it did the first time."""

    command: str
    pathway_id: str | None
    payload: dict[str, Any]
    actor: Actor
    at: datetime
    key: str
    outcome: Outcome


actors = st.one_of(
    st.none(),  # the payload's own (permitted) actor
    st.builds(
        lambda role, n: {"id": f"model-{role.value}-{n}", "role": role.value}, st.sampled_from(Role), st.integers(1, 2)
    ),
)
payload_kinds = st.sampled_from(("valid", "valid", "valid", "mutated", "garbage"))
times = st.sampled_from(("now", "walk", "walk", "future", "before_referral"))


class PathwayMachine(RuleBasedStateMachine):
    """One example: a fresh database, a manual clock that only moves forward, a service."""

    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.database = Database(self.backend)
        self.clock = ManualClock(START)
        self.service = PathwayService(self.database.url, clock=self.clock, auto_upgrade=True)
        self.pathways: dict[str, Expected] = {}
        self.keys = itertools.count(1)
        self.last_keyed: Keyed | None = None
        self.tally: Counter[str] = Counter()

    def teardown(self) -> None:
        self.service.engine.dispose()
        self.database.drop()
        report = os.environ.get(REPORT_ENV)
        if report:
            with open(report, "a", encoding="utf-8") as out:
                out.write(json.dumps({"backend": self.backend, **self.tally}) + "\n")

    # --- helpers ---------------------------------------------------------------------------

    def advance_to(self, at: datetime) -> None:
        """The clock never goes back; an effective time before it is documentation after the fact."""
        if at > self.clock.now():
            self.clock.set(at)

    def key(self) -> str:
        return f"model-{next(self.keys)}"

    def fire(
        self, pathway_id: str, command: str, payload: Any, actor: Actor, at: datetime, key: str | None = None
    ) -> Outcome:
        outcome = attempt(
            lambda: self.service.fire(
                pathway_id, command_name(command), payload, actor=actor, at=at, idempotency_key=key
            )
        )
        expected = self.pathways[pathway_id]
        expected.entries += outcome.written
        self.tally[outcome.kind] += 1
        if outcome.result is not None and not outcome.result.replayed:
            assert outcome.result.pathway_id == pathway_id
            assert outcome.result.entry.sequence == expected.entries
            expected.phase = outcome.result.phase
            self.adopt_linked()
        if key is not None and outcome.written:
            self.last_keyed = Keyed(command, pathway_id, payload, actor, at, key, outcome)
        return outcome

    def adopt_linked(self) -> None:
        """A pathway the service opened on its own (a reinstatement, a subsequent transplant):
        the model follows it from what is stored; no walk predicts it."""
        for pathway_id in sorted(set(self.service.pathway_ids()) - set(self.pathways)):
            snapshot = self.service.snapshot(pathway_id)
            history = self.service.history(pathway_id)
            self.pathways[pathway_id] = Expected(
                patient=snapshot.facts.patient_ref,
                walk=None,
                referred_at=history[0].effective_at,
                phase=snapshot.phase,
                entries=len(history),
                pristine=False,
            )

    def open_pathway_of(self, patient: str) -> str | None:
        found = [p for p, e in self.pathways.items() if e.patient == patient and e.open]
        assert len(found) <= 1, f"two open pathways of one patient: {found}"
        return found[0] if found else None

    def payload_for(self, command: str, kind: str, data: st.DataObject, patient: str) -> tuple[Actor, Any]:
        pool = VALID.get(command) or [(PHYS, {})]
        actor, payload = data.draw(st.sampled_from(pool), label="valid payload")
        if "label_recipient_ref" in payload:
            payload = {**payload, "label_recipient_ref": patient}
        if kind == "mutated" and payload:
            payload = data.draw(mutated(payload), label="mutated payload")
        elif kind == "garbage":
            payload = data.draw(values, label="garbage payload")
        return actor, payload

    # --- rules -----------------------------------------------------------------------------

    @rule(
        patient=st.sampled_from(PATIENTS),
        walk_name=st.sampled_from(sorted(WALKS)),
        actor=actors,
        keyed=st.booleans(),
    )
    def refer(self, patient: str, walk_name: str, actor: Actor | None, keyed: bool) -> None:
        """Refer along a walk moved to today: refused while the patient has an open pathway or
        the role may not refer; else a new pathway in `referred`."""
        now = self.clock.now()
        walk = moved(WALKS[walk_name](), patient, (now.date() - WALK_EPOCH).days)
        at = datetime.combine(now.date(), START.time(), tzinfo=UTC)
        self.advance_to(at)
        who = actor or PHYS
        key = self.key() if keyed else None
        before = set(self.service.pathway_ids())
        outcome = attempt(lambda: self.service.refer(walk.refer, actor=who, at=at, idempotency_key=key))
        self.tally[f"referral_{outcome.kind}"] += 1
        may = POLICY.may(Role(who["role"]), "refer")
        if not may or self.open_pathway_of(patient) is not None:
            assert outcome.refused is not None, (walk_name, who["role"])
            assert (not may) == ("role_not_permitted" in outcome.refused.reasons)
            assert set(self.service.pathway_ids()) == before  # a refused referral writes nothing
            return
        assert outcome.result is not None, outcome
        pathway_id = outcome.result.pathway_id
        assert outcome.result.phase.value == "referred"
        assert set(self.service.pathway_ids()) == before | {pathway_id}
        self.pathways[pathway_id] = Expected(patient=patient, walk=walk, referred_at=at)
        if key is not None:
            self.last_keyed = Keyed("refer", None, walk.refer, who, at, key, outcome)

    @precondition(lambda self: any(e.next() is not None for e in self.pathways.values()))
    @rule(data=st.data(), count=st.sampled_from((1, 4, 12, 40)), keyed=st.booleans())
    def walk_steps(self, data: st.DataObject, count: int, keyed: bool) -> None:
        """The next `count` steps of a pathway's walk: on a pristine pathway each passes and
        moves the phase as the route rules say."""
        pathway_id = data.draw(st.sampled_from([p for p, e in self.pathways.items() if e.next() is not None]))
        expected = self.pathways[pathway_id]
        for _ in range(count):
            step = expected.next()
            if step is None:
                return
            at, actor, command, payload = step
            self.advance_to(at)
            pristine, predicted = expected.pristine, expected.predicted_phase(command)
            outcome = self.fire(pathway_id, command, payload, actor, at, self.key() if keyed else None)
            if pristine:
                assert outcome.result is not None, (command, outcome)
                assert outcome.result.phase is predicted, (command, outcome.result.phase, predicted)
                expected.took_step(command, payload)
            elif outcome.result is not None:
                expected.next_step += 1
            else:
                return

    @precondition(lambda self: bool(self.pathways))
    @rule(data=st.data(), kind=payload_kinds, actor=actors, when=times)
    def any_command(self, data: st.DataObject, kind: str, actor: Actor | None, when: str) -> None:
        """Any command of the chart: refused when the role, the phase or the time rules it out;
        accepted, an event keeps the phase and a trigger follows one of its edges."""
        pathway_id = data.draw(st.sampled_from(list(self.pathways)))
        expected = self.pathways[pathway_id]
        command = data.draw(st.sampled_from(sorted(CHART.commands)), label="command")
        spec = CHART.commands[command]
        own_actor, payload = self.payload_for(command, kind, data, expected.patient)
        who = actor or own_actor
        at = self.when(when, expected)
        before = expected.phase
        outcome = self.fire(pathway_id, command, payload, who, at)
        ruled_out = {
            "role_not_permitted": not POLICY.may(Role(who["role"]), command),
            "trigger_not_allowed_in_phase" if spec.changes_phase else "event_not_allowed_in_phase": (
                before not in spec.phases()
            ),
            "effective_time_in_future": when == "future",
            "effective_time_before_referral": when == "before_referral",
        }
        if outcome.refused is not None:
            for reason, applies in ruled_out.items():
                # A trigger is also refused in one of its phases when no edge fits the route.
                if applies or reason != "trigger_not_allowed_in_phase":
                    assert (reason in outcome.refused.reasons) is applies, (command, reason, outcome.refused.reasons)
        elif any(ruled_out.values()):
            assert outcome.result is None, (command, ruled_out)
        if outcome.result is not None:
            expected.pristine = False
            if spec.changes_phase:
                assert outcome.result.phase in {e.dest for e in spec.edges if e.source is before}, command
            else:
                assert outcome.result.phase is before, command

    def when(self, kind: str, expected: Expected) -> datetime:
        """An effective time: now, the walk's next moment, past the clock's tolerance, or
        before the referral."""
        now = self.clock.now()
        if kind == "future":
            return now + TOLERANCE + timedelta(minutes=1)
        if kind == "before_referral":
            return expected.referred_at - timedelta(days=1)
        step = expected.next()
        if kind == "walk" and step is not None:
            self.advance_to(step[0])
            return step[0]
        return now

    @rule(delta=st.sampled_from((timedelta(minutes=5), timedelta(hours=6), timedelta(days=3), timedelta(days=40))))
    def time_passes(self, delta: timedelta) -> None:
        self.clock.set(self.clock.now() + delta)

    @rule()
    def restart(self) -> None:
        """A new service on the same database sees every pathway exactly as before."""
        before = {p: self.service.snapshot(p) for p in self.pathways}
        self.service.engine.dispose()
        self.service = PathwayService(self.database.url, clock=self.clock, auto_upgrade=True)
        assert {p: self.service.snapshot(p) for p in self.pathways} == before

    @precondition(lambda self: bool(self.pathways))
    @rule(data=st.data(), walk=st.booleans())
    def host_rolls_back(self, data: st.DataObject, walk: bool) -> None:
        """A command in the host's transaction, rolled back: an accepted one leaves nothing, a
        refusal is kept (committed apart, or recorded again after the rollback)."""
        pathway_id = data.draw(st.sampled_from(list(self.pathways)))
        expected = self.pathways[pathway_id]
        step = expected.next()
        actor: Actor
        if walk and step is not None:
            at, actor, command, payload = step
            self.advance_to(at)
        else:
            command = data.draw(st.sampled_from(sorted(CHART.commands)), label="command")
            actor, payload = self.payload_for(command, "valid", data, expected.patient)
            at = self.clock.now()
        before = self.service.snapshot(pathway_id)
        with Session(self.service.engine) as session:
            session.begin()
            outcome = attempt(
                lambda: self.service.fire(
                    pathway_id, command_name(command), payload, actor=actor, at=at, session=session
                )
            )
            session.rollback()
        after = self.service.snapshot(pathway_id)
        assert after.facts == before.facts
        assert set(self.service.pathway_ids()) == set(self.pathways)
        expected.entries += 1 if outcome.refused is not None else 0
        assert after.version == expected.entries, (command, outcome)

    @precondition(lambda self: self.last_keyed is not None)
    @rule(same=st.booleans())
    def resend(self, same: bool) -> None:
        """The last keyed command again: its first answer, nothing written. The key with another
        command: IdempotencyMisuse, nothing written."""
        sent = self.last_keyed
        assert sent is not None
        counts = {p: len(self.service.history(p)) for p in self.pathways}
        if sent.pathway_id is None:
            outcome = attempt(
                lambda: self.service.refer(
                    sent.payload if same else {**sent.payload, "patient_ref": "PT-MODELOTHER"},
                    actor=sent.actor,
                    at=sent.at,
                    idempotency_key=sent.key,
                )
            )
        else:
            command = sent.command if same else "hold" if sent.command != "hold" else "resume"
            payload = sent.payload if same else VALID[command][0][1]
            outcome = attempt(
                lambda: self.service.fire(
                    sent.pathway_id or "",
                    command_name(command),
                    payload,
                    actor=sent.actor,
                    at=sent.at,
                    idempotency_key=sent.key,
                )
            )
        assert {p: len(self.service.history(p)) for p in self.pathways} == counts
        if not same:
            assert outcome.misuse is not None, outcome
        elif sent.outcome.result is not None:
            assert outcome.result is not None, outcome
            assert outcome.result.replayed
            assert outcome.result.entry.hash == sent.outcome.result.entry.hash
        else:
            assert sent.outcome.refused is not None
            assert outcome.refused is not None, outcome
            assert outcome.refused.sequence == sent.outcome.refused.sequence

    @precondition(lambda self: bool(self.pathways))
    @rule(data=st.data(), actor=actors)
    def correct(self, data: st.DataObject, actor: Actor | None) -> None:
        """A correction of one value of an earlier entry (or of an entry that does not exist):
        never a new phase; facts == replay(log) is the invariant's business."""
        pathway_id = data.draw(st.sampled_from(list(self.pathways)))
        expected = self.pathways[pathway_id]
        sequence = data.draw(st.integers(1, expected.entries + 1), label="sequence")
        changes: dict[str, Any] = {"diagnosis": "dlbcl"}
        if sequence <= expected.entries:
            target = self.service.history(pathway_id)[sequence - 1]
            if target.payload:
                name = data.draw(st.sampled_from(sorted(target.payload)), label="field")
                others = [p[name] for _, p in VALID.get(target.trigger, []) if name in p]
                changes = {name: data.draw(st.sampled_from([*others, target.payload[name], "x", 0]), label="value")}
        payload = {"sequence": sequence, "changes": changes, "reason": "model correction"}
        who = actor or VALID["correct_entry"][0][0]
        before = expected.phase
        outcome = self.fire(pathway_id, "correct_entry", payload, who, self.clock.now())
        if sequence > expected.entries - outcome.written:
            assert outcome.result is None, "a correction of an entry that does not exist"
        if outcome.result is not None:
            expected.pristine = False
            assert outcome.result.phase is before

    # --- after every step --------------------------------------------------------------------

    @invariant()
    def stored_state_is_the_replay_and_the_model(self) -> None:
        self.tally["invariant_checks"] += 1
        assert_invariants(self.service.engine)
        assert set(self.service.pathway_ids()) == set(self.pathways)
        for pathway_id, expected in self.pathways.items():
            snapshot = self.service.snapshot(pathway_id)
            assert snapshot.phase is expected.phase, pathway_id
            assert snapshot.version == expected.entries, pathway_id
            if expected.pristine:
                assert snapshot.day0 == expected.day0, pathway_id
                assert expected.products <= set(snapshot.facts.products), pathway_id
        for patient in PATIENTS:
            open_ids = [p for p in self.service.find(patient) if self.pathways[p].open]
            assert len(open_ids) <= 1, patient
