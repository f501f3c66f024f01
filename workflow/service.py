"""The embedding API: the one place where loading, judging, firing and appending meet.

caller -> validate (closed pydantic models) -> unit of work -> load snapshot and chain head ->
judge (role, phase, guards; pure) -> fire the shared machine -> append the entry, its outbox
row and move the pathway row (version-checked) in one transaction -> commit -> result. A
refusal is an entry too, committed in the service's own transaction. When the host passes its
Session, the service works in a SAVEPOINT inside it (a failed command does not touch the host's
other work) and a command that passes commits with the host; a refusal is committed apart, or
recorded again after the host's rollback (`durable_refusals`, workflow/host_session.py). The
service's own transactions are re-run under its RetryPolicy when they lose a race; nothing
leaves the process before commit (after-commit listeners and workflow/outbox.py come after).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from difflib import get_close_matches
from functools import partial
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from persistence.engine import KeptConnection, configure_engine, create_engine, no_wait
from persistence.models import ID_LENGTH
from persistence.policies import PolicyBook, check, register
from persistence.schema import ensure_current
from persistence.series import split_facts
from persistence.store import LogFilter, PathwayRecord, Store, translate_errors
from states.actor import Actor
from states.chart import CHART, Command
from states.command_names import CommandName
from states.course_payloads import Reinstate
from states.days import clinical_date, day_label, day_number, label_at
from states.engraftment import neutrophil_recovery_of, platelet_recovery_50_of, platelet_recovery_of
from states.entry import Draft, Entry, origin_label
from states.errors import (
    AmbiguousId,
    BeforeFirstEntry,
    ConcurrencyConflict,
    FieldProblem,
    IdempotencyMisuse,
    IntegrityError,
    InvalidCommand,
    PatientHasOpenPathway,
    Refused,
    UnknownPathway,
)
from states.facts import PathwayFacts
from states.flags import pathway_flags
from states.fold import Opening, apply_entry, replay
from states.gvhd import max_grade
from states.judge import judge, judge_referral
from states.milestones import Milestone, Schedule, milestones, planned_by_these_rules, plans_alike, schedule
from states.payloads import (
    AdoptPolicy,
    BedsideCheck,
    CorrectEntry,
    PatientRef,
    Payload,
    Refer,
    StartSubsequentTransplant,
)
from states.policy import Policy
from states.vocabulary import EntryKind, Phase, Role
from workflow import __version__
from workflow.clock import Clock, SystemClock
from workflow.corrections import correction_problems
from workflow.engine import PathwayEngine
from workflow.facts_cache import FactsCache
from workflow.faults import AFTER_COMMIT_BEFORE_DISPATCH, AFTER_FLUSH_BEFORE_COMMIT, BEFORE_FLUSH, crash_point
from workflow.host_session import when_ended
from workflow.listing import Listed, listed
from workflow.retry import RetryPolicy, own_transaction, transient
from workflow.validation import (
    PAYLOAD,
    aware,
    bounded,
    plausible_id,
    stored_form,
    stored_payload,
    subsequent_key,
    validated,
)
from workflow.validation import idempotency_key as checked_key

OPEN_PATHWAY = "patient_has_open_pathway"
LINKED = (StartSubsequentTransplant, Reinstate)
"""Payloads that close their pathway by opening a linked one (one open pathway per patient)."""
"""Refused: the patient already has an open pathway (one at a time, docs/decisions.md)."""

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

RoleDirectory = Callable[[Connection, str], Iterable[Role]]
"""The host's answer to "which roles does this actor hold now?", asked on the connection of the
committing transaction, so a role revoked after the pathway was loaded is already denied."""

Listener = Callable[[Entry, PathwayFacts], None]
"""`listeners=`: called inside the transaction with the sealed entry and the pathway's facts
after it; raising undoes the command. A retried command calls it again, and a host's rollback
takes the entry back after the call: side effects belong in `after_commit=` or the outbox.
`after_commit=` listeners have the same signature and hear only of committed entries."""

_SEALED: ContextVar[list[tuple[Entry, PathwayFacts]] | None] = ContextVar("hsct_sealed", default=None)
"""The entries the current try of a unit of work has appended, for the after-commit listeners."""

T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """What a successful command did."""

    pathway_id: str
    phase: Phase
    entry: Entry
    day_label: str | None
    replayed: bool = False


@dataclass(frozen=True)
class Availability:
    """A dry-run answer: would `command` pass now (reasons when not)."""

    command: str
    passed: bool
    reasons: tuple[str, ...] = ()
    needs_payload: bool = False


@dataclass(frozen=True)
class Snapshot:
    """A pathway as of a moment: phase, Day numbering, donors, products, labs and flags."""

    pathway_id: str
    version: int
    facts: PathwayFacts
    at: datetime
    day: int | None
    day_label: str | None
    neutrophil_recovery_on: date | None
    platelet_recovery_on: date | None
    # Form 2100's second platelet date, >= 50 x10^9/L, same rule [F:CIBMTR-PLT].
    platelet_recovery_50_on: date | None = None
    gvhd_max_grade: int = 0
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def phase(self) -> Phase:
        return self.facts.phase

    @property
    def day0(self) -> date | None:
        return self.facts.day0

    @property
    def planned_day0(self) -> date | None:
        return self.facts.planned_day0

    def day_of(self, on: date) -> int | None:
        anchor = self.facts.day0 or self.facts.planned_day0
        return None if anchor is None else day_number(on, anchor)


@dataclass
class _Outcome:
    result: Result | None = None
    refusal: Refused | None = None


class PathwayService:
    """Refer patients and move their pathways; every attempt is a chained log entry."""

    def __init__(
        self,
        engine: Engine | str,
        *,
        policy: Policy | None = None,
        clock: Clock | None = None,
        listeners: Sequence[Listener] = (),
        auto_upgrade: bool | None = None,
        retry: RetryPolicy | None = None,
        roles: RoleDirectory | None = None,
        origin: str = "live",
        after_commit: Sequence[Listener] = (),
        durable_refusals: bool = True,
        outbox: bool = True,
    ) -> None:
        # A host's own engine gets the library's set-up too (docs/embedding.md, "Engines").
        self.engine = create_engine(engine) if isinstance(engine, str) else configure_engine(engine)
        # Hashed into every entry (canonical form 2): where it came from, which release wrote it.
        self.origin = origin_label(origin)
        self.release = __version__
        self.policy = policy or Policy()
        self.clock = clock or SystemClock()
        self.listeners = list(listeners)
        self.after_commit = list(after_commit)
        # A refusal inside a host's transaction is committed on its own (docs/embedding.md).
        self.durable_refusals = durable_refusals
        # False: no outbox row per entry, for a host that never runs the dispatcher (docs/embedding.md).
        self.outbox = outbox
        self.retry = retry or RetryPolicy()
        self.roles = roles
        self._machine = PathwayEngine()
        self._facts = FactsCache()  # facts this process wrote, reused by digest (workflow/facts_cache.py)
        # SQLite: the service's own transactions hold the write lock from BEGIN IMMEDIATE, so a
        # command may judge the row its last write left once one probe finds it stored (`fire`).
        self._holds_lock = self.engine.dialect.name == "sqlite"
        self._connections = KeptConnection(self.engine)  # the service's own transactions (SQLite)
        if auto_upgrade is None:
            auto_upgrade = self.engine.dialect.name == "sqlite"
        try:
            with translate_errors():  # a busy SQLite at start-up is a ConcurrencyConflict too
                ensure_current(self.engine, auto_upgrade_empty=auto_upgrade)
                # PolicyError if its version is registered with other rules; stored with its first entry.
                with self.engine.connect() as connection:
                    self._registered = check(connection, self.policy)
        except Exception:
            if isinstance(engine, str):  # the engine is ours: its connections must not leak
                self.engine.dispose()
            raise
        self._policies = PolicyBook(self.policy)

    # --- units of work -------------------------------------------------------------------

    def _write(self, session: Session | None, work: Callable[[Store], T], key: str | None) -> T:
        """Run `work` in the host's transaction (a SAVEPOINT inside it, no commit, no retry:
        the host owns both) or in transactions of the service's own, retried by its policy."""
        if session is not None:
            with _Sealing() as sealed, translate_errors(), session.begin_nested():
                done = work(Store(session, announce=self.outbox))
            if sealed and self.after_commit:
                when_ended(session, on_commit=partial(self._deliver, sealed))
            return done
        done, sealed = self.retry.call(partial(self._unit, work), partial(transient, resend_safe=key is not None))
        self._deliver(sealed)
        return done

    def _unit(self, work: Callable[[Store], T]) -> tuple[T, list[tuple[Entry, PathwayFacts]]]:
        """One try of `work` in a transaction of the service's own; the entries it sealed."""
        with _Sealing() as sealed:
            done = own_transaction(
                self._connections,
                lambda connection: work(Store(connection, announce=self.outbox)),
                before_commit=AFTER_FLUSH_BEFORE_COMMIT,
                after_commit=AFTER_COMMIT_BEFORE_DISPATCH,
            )
        return done, sealed

    def _sealed(self, entry: Entry, facts: PathwayFacts) -> None:
        """An entry is appended: the in-transaction listeners now, the others after commit."""
        for listener in self.listeners:
            listener(entry, facts)
        sealed = _SEALED.get()
        if sealed is not None:
            sealed.append((entry, facts))

    def _deliver(self, sealed: list[tuple[Entry, PathwayFacts]]) -> None:
        """The after-commit listeners, each entry in order; the entries are committed, so a
        listener's error is logged and the others still hear of them."""
        for entry, facts in sealed:
            for listener in self.after_commit:
                try:
                    listener(entry, facts)
                except Exception:
                    logger.exception(
                        "after-commit listener failed on pathway %s (seq %d)", entry.pathway_id, entry.sequence
                    )

    @contextmanager
    def _reading(self, session: Session | None) -> Iterator[Store]:
        with translate_errors():
            if session is not None:
                yield Store(session)
                return
            with self._connections.begin() as own:
                yield Store(own)

    # --- commands ----------------------------------------------------------------------

    def refer(
        self,
        payload: Refer | Mapping[str, Any],
        *,
        actor: Actor | Mapping[str, Any],
        at: datetime,
        idempotency_key: str | None = None,
        session: Session | None = None,
    ) -> Result:
        """Open a pathway in `referred`. A refused referral raises without writing: there is
        no pathway yet whose log could hold it (docs/decisions.md)."""
        bounded(payload, command="refer", policy=self.policy)
        refer = validated(Refer, payload, command="refer")
        sent = stored_payload(refer, command="refer", policy=self.policy)
        who = validated(Actor, actor, command="refer", prefix="actor")
        at = aware(at, command="refer")
        idempotency_key = checked_key(idempotency_key, command="refer")
        opening = Opening(**refer.model_dump(), timezone=self.policy.timezone)

        def work(store: Store) -> Result:
            replay_hit = self._replayed(store, idempotency_key, "refer", None, sent, who)
            if replay_hit is not None:
                return replay_hit
            verdict = judge_referral(actor_role=who.role, at=at, now=self.clock.now(), policy=self.policy)
            reasons = verdict.reasons + self._roles_not_held(store, who)
            if store.open_pathways_of(refer.patient_ref):
                # The open pathway may be this referral's own first send, committed since the
                # key was looked up above (PostgreSQL, READ COMMITTED): then it is a replay.
                replay_hit = self._replayed(store, idempotency_key, "refer", None, sent, who)
                if replay_hit is not None:
                    return replay_hit
                reasons += (OPEN_PATHWAY,)
            if reasons:
                raise Refused("-", "refer", reasons, None)
            return self._open(store, opening, Phase.REFERRED, "refer", who, at, idempotency_key)

        try:
            return self._write(session, work, idempotency_key)
        except PatientHasOpenPathway:  # a referral of the same patient committed after our look
            # It may be this very referral sent twice at once: the unique index on the patient
            # fires before the one on the key, so look the key up again in a fresh statement.
            if idempotency_key is not None:
                with self._reading(session) as store:
                    first = self._replayed(store, idempotency_key, "refer", None, sent, who)
                if first is not None:
                    return first
            raise Refused("-", "refer", (OPEN_PATHWAY,), None) from None

    def fire(
        self,
        pathway_id: str,
        command: CommandName,
        payload: Payload | Mapping[str, Any] | None = None,
        *,
        actor: Actor | Mapping[str, Any],
        at: datetime,
        idempotency_key: str | None = None,
        session: Session | None = None,
    ) -> Result:
        """Fire a trigger or record an event. Raises `Refused` (after logging the refusal),
        `InvalidCommand` (nothing written), `UnknownPathway`, `IdempotencyMisuse`,
        `ConcurrencyConflict` (once the retry policy gives up), `StorageError`."""
        spec = self._command(command)
        bounded(payload, command=command, policy=self.policy)
        body = validated(spec.payload, payload, command=command)
        dumped = stored_payload(body, command=command, policy=self.policy)
        self._reject_derived(spec, payload, command)
        who = validated(Actor, actor, command=command, prefix="actor")
        at = aware(at, command=command)
        idempotency_key = checked_key(idempotency_key, command=command)
        sent = None if idempotency_key is None else dumped  # what an idempotent resend is compared by

        def replay(store: Store) -> Result | None:
            return None if sent is None else self._replayed(store, idempotency_key, command, pathway_id, sent, who)

        # Only in a transaction of the service's own, whose BEGIN IMMEDIATE (SQLite) has locked
        # every other writer out since before the key was looked up.
        holding = self._holds_lock and session is None and type(pathway_id) is str

        def work(store: Store) -> _Outcome:
            # A replay of a committed command is answered without waiting for the pathway.
            outcome = _Outcome(replay(store))
            if outcome.result is None:
                held = self._facts.held(pathway_id) if holding else None
                if held is not None and store.holds(held):
                    record = held  # the row this service's last write left, still the stored one
                else:
                    # Locked from here to commit (PostgreSQL): the judged facts are the committed ones.
                    record = self._load(store, pathway_id, for_update=True)
                    # Looked up again: a first send still running when we looked has now committed
                    # (we waited for its lock), or rolled back and left the command to us.
                    outcome.result = replay(store)
                if outcome.result is None:
                    self._attempt(store, record, spec, body, dumped, who, at, idempotency_key, outcome)
            return outcome

        if session is not None and self.durable_refusals:
            outcome = self._in_host(session, work, pathway_id)
        else:
            outcome = self._write(session, work, idempotency_key)
        if outcome.refusal is not None:
            raise outcome.refusal
        assert outcome.result is not None
        return outcome.result

    def _in_host(self, session: Session, work: Callable[[Store], _Outcome], pathway_id: str) -> _Outcome:
        """A command in the host's transaction whose refusal outlives the host's rollback.

        A refusal is undone there and committed apart, on a connection of the service's own
        that does not wait for the pathway (its lock, or SQLite's write lock). When it would
        have to wait (the host's transaction holds the lock: it has written to this pathway,
        or on SQLite to anything) or cannot see the pathway (opened in the host's transaction),
        the refusal stays in the host's transaction, and if the host's rollback takes it away
        it is judged and recorded again once that transaction has ended.
        """
        try:
            return self._write(session, partial(_success_only, work), None)
        except _RefusedHere:
            pass
        apart = self._refusal_apart(work, pathway_id)
        if apart is not None:
            return apart
        outcome = self._write(session, work, None)
        if outcome.refusal is not None:
            logger.info("refusal on pathway %s kept in the host's transaction", outcome.refusal.pathway_id)
            when_ended(session, on_rollback=partial(self._record_again, work))
        return outcome

    def _refusal_apart(self, work: Callable[[Store], _Outcome], pathway_id: str) -> _Outcome | None:
        """The refusal committed in a short transaction of the service's own, or None when
        that would wait for a lock or the pathway is not committed (nothing written then)."""
        try:
            with translate_errors(), self.engine.connect() as connection, no_wait(connection):
                with connection.begin() as transaction:
                    store = Store(connection, announce=self.outbox)
                    if not store.lock_at_once(pathway_id):
                        return None  # opened in the host's transaction: not ours to see
                    outcome = work(store)
                    if outcome.refusal is None:  # it passes now: the host's transaction decides
                        transaction.rollback()
                        return None
                return outcome
        except (ConcurrencyConflict, UnknownPathway):
            return None

    def _record_again(self, work: Callable[[Store], _Outcome]) -> None:
        """After the host's rollback took a refusal away: judge again and record a refusal
        in a transaction of the service's own (nothing when the command would pass now)."""

        def refusal_only(store: Store) -> _Outcome:
            outcome = work(store)
            if outcome.refusal is None:
                raise _PassesNow
            return outcome

        try:
            self._write(None, refusal_only, None)
        except _PassesNow:
            logger.info("a refusal undone by the host's rollback would pass now: not recorded again")

    def _attempt(
        self,
        store: Store,
        record: PathwayRecord,
        spec: Command,
        body: Payload,
        dumped: dict[str, Any],
        who: Actor,
        at: datetime,
        key: str | None,
        outcome: _Outcome,
    ) -> None:
        """Judge `body` (`dumped`: its stored form, `stored_payload`) on `record`, and append
        the refusal or the entry with its facts."""
        facts = self._facts.parsed(record, store)
        now = self.clock.now()
        version, policy = self._policy_for(store, facts)
        adopting = body.version if isinstance(body, AdoptPolicy) else None
        if policy is self.policy or adopting == self.policy.version_id:
            self._register(store)
        if adopting is not None and self._policies.get(store.connection, adopting) is None:
            problem = FieldProblem(f"{PAYLOAD}.version", "policy_version_unknown", "not in the policy registry")
            raise InvalidCommand(spec.name, [problem])
        judgement = judge(spec, facts, body, actor_id=who.id, actor_role=who.role, at=at, now=now, policy=policy)
        reasons = judgement.verdict.reasons + self._roles_not_held(store, who, body)
        # A correction needs the log (to check its target, then to replay): read it once.
        log = store.entries(record.id) if isinstance(body, CorrectEntry) else []
        if isinstance(body, CorrectEntry):
            reasons += correction_problems(log, body)  # InvalidCommand when the changes are malformed
        if isinstance(body, LINKED) and set(store.open_pathways_of(facts.patient_ref)) - {record.id}:
            reasons += (OPEN_PATHWAY,)
        crash_point(BEFORE_FLUSH)
        if reasons:
            entry = store.append(
                record.id,
                self._draft(
                    record.id,
                    EntryKind.REFUSAL,
                    spec.name,
                    facts.phase,
                    facts.phase,
                    at,
                    now,
                    who,
                    body,
                    dumped,
                    key,
                    reasons=reasons,
                    policy_version=version,
                ),
                expected_version=record.version,
                head_hash=record.head_hash,
                phase=facts.phase,
                facts_json=None,
                now=now,
                unchanged_digest=record.facts_digest,
            )
            if self._holds_lock:
                self._facts.moved(record.advanced(entry, now))
            logger.info("refused %s on pathway %s: %s", spec.name, record.id, ",".join(reasons))
            outcome.refusal = Refused(record.id, spec.name, reasons, entry.sequence)
            return
        judged = body
        if judgement.verdict.derived:
            body = body.model_copy(update=dict(judgement.verdict.derived))
        if isinstance(body, LINKED):
            body = self._open_linked(store, record, facts, body, spec.name, who, at, key)
        if body is not judged:  # derived values or a linked pathway's id: the entry stores those
            dumped = stored_form(body)
        phase = facts.phase
        if spec.changes_phase:
            phase = self._machine.fire(facts.phase, spec.name, facts, policy)
            if phase is not judgement.destination:
                raise RuntimeError(f"engine and chart disagree on {spec.name} from {facts.phase}")
        kind = (
            EntryKind.CORRECTION
            if isinstance(body, CorrectEntry)
            else EntryKind.TRANSITION
            if spec.changes_phase
            else EntryKind.EVENT
        )
        draft = self._draft(
            record.id, kind, spec.name, facts.phase, phase, at, now, who, body, dumped, key, policy_version=version
        )
        sequence = record.version + 1
        if kind is EntryKind.CORRECTION:
            new_facts = replay([*log, _provisional(draft, sequence)])
        else:
            new_facts = apply_entry(facts, draft, sequence)
        planned = self._schedule_text(store, new_facts, record.id, facts)
        split = split_facts(new_facts, facts, record.facts, self._facts.members_of(record.id, facts))
        entry = store.append(
            record.id,
            draft,
            expected_version=record.version,
            head_hash=record.head_hash,
            phase=new_facts.phase,
            facts_json=split,
            now=now,
            schedule=planned,
        )
        # A linked opening set the row's successor: the next command loads it.
        kept = record.advanced(entry, now, split.text) if self._holds_lock and not isinstance(body, LINKED) else None
        self._facts.wrote(record.id, entry.facts_digest, new_facts, planned, split.members, kept)
        self._sealed(entry, new_facts)
        logger.info("%s %s on pathway %s (seq %d)", kind, spec.name, record.id, entry.sequence)
        outcome.result = Result(record.id, new_facts.phase, entry, _label(new_facts, entry.effective_at))

    def _open(
        self,
        store: Store,
        opening: Opening,
        phase: Phase,
        trigger: str,
        who: Actor,
        at: datetime,
        key: str | None,
    ) -> Result:
        pathway_id = str(uuid.uuid4())
        now = self.clock.now()
        self._register(store)
        draft = self._draft(
            pathway_id, EntryKind.TRANSITION, trigger, None, phase, at, now, who, opening, stored_form(opening), key
        )
        facts = apply_entry(None, draft, 1)
        crash_point(BEFORE_FLUSH)
        if opening.previous_pathway is not None:  # the earlier pathway is no longer the open one
            store.set_successor(opening.previous_pathway, pathway_id)
        split, planned = split_facts(facts, None, None), self._schedule_text(store, facts)
        entry = store.insert_pathway(
            pathway_id=pathway_id,
            patient_ref=opening.patient_ref,
            route=opening.route,
            donor_type=opening.donor_type,
            graft_source=opening.graft_source,
            hct_number=opening.hct_number,
            previous_pathway=opening.previous_pathway,
            phase=phase,
            facts_json=split,
            first=draft,
            now=now,
            schedule=planned,
        )
        self._facts.wrote(pathway_id, entry.facts_digest, facts, planned, split.members)
        self._sealed(entry, facts)
        logger.info("opened pathway %s in %s", pathway_id, phase.value)
        return Result(pathway_id, phase, entry, None)

    def _open_linked(
        self,
        store: Store,
        record: PathwayRecord,
        facts: PathwayFacts,
        body: StartSubsequentTransplant | Reinstate,
        trigger: str,
        who: Actor,
        at: datetime,
        key: str | None,
    ) -> StartSubsequentTransplant | Reinstate:
        """The linked pathway (the next HCT, or a withdrawn patient's reinstatement): same
        patient and timezone; what else it carries is the payload's `linked_opening`."""
        opening = Opening(
            patient_ref=facts.patient_ref,
            timezone=facts.timezone,
            previous_pathway=record.id,
            **body.linked_opening(facts),
        )
        opened = self._open(store, opening, body.begin_phase, trigger, who, at, subsequent_key(key))
        return body.model_copy(update={"new_pathway_id": opened.pathway_id})

    # --- helpers ---------------------------------------------------------------------------

    def _draft(
        self,
        pathway_id: str,
        kind: EntryKind,
        trigger: str,
        source: Phase | None,
        dest: Phase | None,
        at: datetime,
        now: datetime,
        who: Actor,
        body: Payload,
        stored: dict[str, Any],
        key: str | None,
        *,
        reasons: tuple[str, ...] = (),
        policy_version: str | None = None,
    ) -> Draft:
        """The entry the service decided on, storing `stored` (the body's `stored_form`)."""
        return Draft(
            pathway_id=pathway_id,
            kind=kind,
            trigger=trigger,
            from_phase=source,
            to_phase=dest,
            effective_at=at,
            recorded_at=now,
            actor_id=who.id,
            actor_role=who.role,
            reason=_reason_of(body),
            payload=stored,
            reasons=reasons,
            policy_version=policy_version or self.policy.version_id,
            idempotency_key=key,
            origin=self.origin,
            release=self.release,
            corrects=body.sequence if isinstance(body, CorrectEntry) else None,
        )

    @staticmethod
    def _command(name: str) -> Command:
        spec = CHART.get(command_name(name))
        assert spec is not None
        return spec

    @staticmethod
    def _reject_derived(spec: Command, payload: object, command: str) -> None:
        if not spec.payload.derived_fields:  # most commands derive nothing
            return
        sent = set(payload) if isinstance(payload, Mapping) else set()
        if isinstance(payload, Payload):
            sent = {k for k in spec.payload.derived_fields if getattr(payload, k) is not None}
        clash = sorted(sent & spec.payload.derived_fields)
        if clash:
            raise InvalidCommand(
                command,
                [FieldProblem(f"{PAYLOAD}.{name}", "derived_field", "is derived by the library") for name in clash],
            )

    def _roles_not_held(self, store: Store, who: Actor, body: Payload | None = None) -> tuple[str, ...]:
        """With a role directory: the actor, and an infusion's verifiers, hold their roles now."""
        if self.roles is None:
            return ()
        reasons = []
        connection = store.connection_for_host()
        if who.role not in set(self.roles(connection, who.id)):
            reasons.append("role_not_held")
        verifiers = body.verifiers if isinstance(body, BedsideCheck) else ()
        if any(v.role not in set(self.roles(connection, v.id)) for v in verifiers):
            reasons.append("verifier_role_not_held")
        return tuple(reasons)

    def _register(self, store: Store) -> None:
        """The service's policy goes into the registry in the transaction of the first entry
        judged under it (until a later write finds it committed, each write makes sure)."""
        if not self._registered:
            self._registered = register(store.connection, self.policy, now=self.clock.now(), release=self.release)

    def _policy_for(self, store: Store, facts: PathwayFacts) -> tuple[str, Policy]:
        """The policy a pathway is judged under: its own version, from the registry. A version
        the registry does not hold (a pathway from before the registry) falls back to the
        service's policy, as before the registry; its entries then record that version."""
        version = facts.policy_version
        found = None if version is None else self._policies.get(store.connection, version)
        if found is None or version is None:
            if version is not None:
                logger.warning("policy %s is not registered: judging under %s", version, self.policy.version_id)
            return self.policy.version_id, self.policy
        return version, found

    def _schedule_text(
        self, store: Store, facts: PathwayFacts, pathway_id: str | None = None, before: PathwayFacts | None = None
    ) -> str:
        """The milestone schedule stored with `facts`: under the policy they are judged by
        (after `adopt_policy`, the adopted one), as `milestones` would read it. The plan this
        process made for `before` when nothing it reads has changed since."""
        if before is not None and pathway_id is not None and before.policy_version == facts.policy_version:
            made = self._facts.schedule_of(pathway_id, before)
            if made is not None and plans_alike(before, facts):
                return made
        return self._planned(store, facts).dumps()

    def _planned(self, store: Store, facts: PathwayFacts) -> Schedule:
        """The facts' milestone schedule under the policy they are judged by."""
        return schedule(facts, self._policy_for(store, facts)[1])

    @staticmethod
    def _load(store: Store, pathway_id: str, *, for_update: bool = False) -> PathwayRecord:
        record = store.load(pathway_id, for_update=for_update) if plausible_id(pathway_id, ID_LENGTH) else None
        if record is None:
            raise UnknownPathway(str(pathway_id)[:64])
        return record

    def _replayed(
        self,
        store: Store,
        key: str | None,
        command: str,
        pathway_id: str | None,
        payload: Mapping[str, Any],
        who: Actor,
    ) -> Result | None:
        """The stored result of an earlier command with the same idempotency key."""
        if key is None:
            return None
        entry = store.entry_by_idempotency_key(key)
        if entry is None:
            return None
        spec = CHART.get(command)
        derived = spec.payload.derived_fields if spec else frozenset()
        stored = {k: v for k, v in entry.payload.items() if k not in derived}
        if command == "refer":
            stored = {k: v for k, v in stored.items() if k in Refer.model_fields}
        same = (
            entry.trigger == command
            and (pathway_id is None or entry.pathway_id == pathway_id)
            and entry.actor_id == who.id
            and stored == {k: v for k, v in payload.items() if v is not None}
        )
        if not same:
            raise IdempotencyMisuse(hashlib.sha256(key.encode()).hexdigest())
        if entry.kind is EntryKind.REFUSAL:
            raise Refused(entry.pathway_id, command, entry.reasons, entry.sequence)
        # The stored snapshot is the fold of the log (I1): no need to replay it for a label.
        facts = self._facts.parsed(self._load(store, entry.pathway_id), store)
        return Result(entry.pathway_id, entry.to_phase or facts.phase, entry, _label(facts, entry.effective_at), True)

    # --- reading -------------------------------------------------------------------------

    def can_fire(
        self,
        pathway_id: str,
        command: CommandName,
        payload: Payload | Mapping[str, Any] | None = None,
        *,
        actor: Actor | Mapping[str, Any],
        at: datetime | None = None,
        session: Session | None = None,
    ) -> Availability:
        """Would this command pass now? Nothing is written."""
        spec = self._command(command)
        body = validated(spec.payload, payload, command=command)
        who = validated(Actor, actor, command=command, prefix="actor")
        when = aware(at, command=command) if at is not None else self.clock.now()
        with self._reading(session) as store:
            facts = self._facts.parsed(self._load(store, pathway_id), store)
            _, policy = self._policy_for(store, facts)
            not_held = self._roles_not_held(store, who, body)
        verdict = judge(
            spec, facts, body, actor_id=who.id, actor_role=who.role, at=when, now=self.clock.now(), policy=policy
        ).verdict
        reasons = verdict.reasons + not_held
        return Availability(command, not reasons, reasons)

    def available(
        self,
        pathway_id: str,
        *,
        actor: Actor | Mapping[str, Any],
        at: datetime | None = None,
        session: Session | None = None,
    ) -> list[Availability]:
        """Every command the actor may use in the current phase, judged without a payload
        where the command needs none (`needs_payload` otherwise)."""
        who = validated(Actor, actor, command="available", prefix="actor")
        when = aware(at, command="available") if at is not None else self.clock.now()
        with self._reading(session) as store:
            facts = self._facts.parsed(self._load(store, pathway_id), store)
            _, policy = self._policy_for(store, facts)
            not_held = self._roles_not_held(store, who)
        answers = []
        for spec in CHART.commands.values():
            if facts.phase not in spec.phases() or not policy.may(who.role, spec.name):
                continue
            try:
                body = spec.payload.model_validate({})
            except ValueError:
                answers.append(Availability(spec.name, not not_held, not_held, needs_payload=True))
                continue
            verdict = judge(
                spec, facts, body, actor_id=who.id, actor_role=who.role, at=when, now=when, policy=policy
            ).verdict
            reasons = verdict.reasons + not_held
            answers.append(Availability(spec.name, not reasons, reasons))
        return answers

    def snapshot(self, pathway_id: str, *, at: datetime | None = None, session: Session | None = None) -> Snapshot:
        """The pathway now (stored snapshot), labelled for `at` (default: the clock)."""
        when = aware(at, command="snapshot") if at is not None else self.clock.now()
        with self._reading(session) as store:
            record = self._load(store, pathway_id)
            facts = self._facts.parsed(record, store)
        return self._snapshot(record.id, record.version, facts, when)

    def state_at(
        self,
        pathway_id: str,
        at: datetime,
        *,
        as_known_now: bool = False,
        until_sequence: int | None = None,
        session: Session | None = None,
    ) -> Snapshot:
        """What was known at `at`: the log replayed up to entries recorded by then (and no
        further than entry `until_sequence`, when given); with `as_known_now`, the corrections
        recorded since are applied to those entries."""
        when = aware(at, command="state_at")
        with self._reading(session) as store:
            self._load(store, pathway_id)
            entries = store.entries(pathway_id, until_recorded=when)
            if until_sequence is not None:
                entries = entries[:until_sequence]
            later = store.entries(pathway_id) if as_known_now else entries
            if not entries:
                first = store.entries(pathway_id)[0].recorded_at.isoformat()
                raise BeforeFirstEntry(pathway_id, when.isoformat(), f"recorded at {first}")
        return self._snapshot(pathway_id, len(entries), replay(entries, corrections_from=later), when)

    def state_on(self, pathway_id: str, on: date, *, session: Session | None = None) -> Snapshot:
        """The pathway on clinical date `on` with everything known now: the entries effective
        by the end of that day (pathway's timezone), whenever recorded, every correction
        recorded since applied. `state_at` answers the other question: what was recorded then."""
        if isinstance(on, datetime) or not isinstance(on, date):
            raise InvalidCommand("state_on", [FieldProblem("on", "date_only", "must be a date, not a time")])
        with self._reading(session) as store:
            zone = self._facts.parsed(self._load(store, pathway_id), store).timezone
            log = store.entries(pathway_id)
        end = datetime.combine(on + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone)) - timedelta(microseconds=1)
        effective = [e for e in log if e.effective_at <= end and e.kind is not EntryKind.CORRECTION]
        if not effective or effective[0].sequence != 1:
            raise BeforeFirstEntry(pathway_id, on.isoformat(), f"effective at {log[0].effective_at.isoformat()}")
        return self._snapshot(pathway_id, effective[-1].sequence, replay(effective, corrections_from=log), end)

    def history(self, pathway_id: str, *, session: Session | None = None) -> list[Entry]:
        with self._reading(session) as store:
            self._load(store, pathway_id)
            return store.entries(pathway_id)

    def log(self, where: LogFilter, *, session: Session | None = None) -> list[Entry]:
        """The entries of every pathway (or one) that `where` selects, oldest recorded first,
        filtered in SQL (`hsct audit log`)."""
        with self._reading(session) as store:
            return list(store.log(where))

    def resolve_id(self, given: str, *, session: Session | None = None) -> str:
        """The pathway id `given` names: itself, or the one id it is a prefix of (at least
        MIN_ID_PREFIX characters). UnknownPathway when none matches, AmbiguousId (with the
        count) when several do."""
        if not plausible_id(given, ID_LENGTH):
            raise UnknownPathway(str(given)[:64])
        with self._reading(session) as store:
            if store.load(given, checked=False) is not None:
                return given
            if len(given) < MIN_ID_PREFIX:
                raise UnknownPathway(given)
            found = store.ids_starting_with(given)
        if not found:
            raise UnknownPathway(given)
        if len(found) > 1:
            raise AmbiguousId(given, len(found))
        return str(found[0])

    def pathway_ids(self, *, phase: Phase | None = None, session: Session | None = None) -> list[str]:
        with self._reading(session) as store:
            return store.pathway_ids(phase)

    def listing(
        self,
        *,
        phase: Phase | None = None,
        patient_ref: str | None = None,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> list[Listed]:
        """One row per pathway (or per pathway of one patient, the open one first), labelled
        for `at` (default: the clock), from one query (workflow/listing.py)."""
        when = aware(at, command="listing") if at is not None else self.clock.now()
        ref = None
        if patient_ref is not None:
            ref = validated(_PatientQuery, {"patient_ref": patient_ref}, command="find", prefix="").patient_ref
        with self._reading(session) as store:
            return listed(store.records(phase=phase, patient_ref=ref), when, open_first=ref is not None)

    def find(self, patient_ref: str, *, session: Session | None = None) -> list[str]:
        """The patient's pathway ids: the open one first, then the others oldest first.
        InvalidCommand when `patient_ref` could not be a patient reference."""
        ref = validated(_PatientQuery, {"patient_ref": patient_ref}, command="find", prefix="").patient_ref
        with self._reading(session) as store:
            open_ids = store.open_pathways_of(ref)
            every = store.pathways_of(ref)
        return [*open_ids, *(i for i in every if i not in open_ids)]

    def milestones(
        self, pathway_id: str, *, at: datetime | None = None, session: Session | None = None
    ) -> list[Milestone]:
        """What is due or overdue on the pathway at `at` (default: the clock)."""
        when = aware(at, command="milestones") if at is not None else self.clock.now()
        with self._reading(session) as store:
            facts = self._facts.parsed(self._load(store, pathway_id), store)
            _, policy = self._policy_for(store, facts)
        return milestones(facts, policy, clinical_date(when, facts.timezone))

    def due(self, pathway_id: str, *, at: datetime | None = None, session: Session | None = None) -> list[Milestone]:
        return [m for m in self.milestones(pathway_id, at=at, session=session) if m.status == "due"]

    def overdue(
        self, pathway_id: str, *, at: datetime | None = None, session: Session | None = None
    ) -> list[Milestone]:
        return [m for m in self.milestones(pathway_id, at=at, session=session) if m.status == "overdue"]

    def all_milestones(
        self, *, at: datetime | None = None, session: Session | None = None
    ) -> dict[str, list[Milestone]]:
        """Open milestones of every pathway with something open, from the stored schedules
        (one query; the facts only of rows written before migration 0008)."""
        with self._reading(session) as store:
            return dict(self._open_milestones(store, at, None))

    def open_work(
        self, *, at: datetime | None = None, on: date | None = None, session: Session | None = None
    ) -> list[tuple[str, PathwayFacts, list[Milestone]]]:
        """(id, facts, open milestones) of every pathway with something open (a final one: a
        product without a disposition), read in one query: a worklist needs the phase and Day
        beside each milestone. `on` is a clinical date for every pathway alike; otherwise each
        takes `at`'s date in its zone."""
        with self._reading(session) as store:
            found = list(self._open_milestones(store, at, on))
            facts_of = dict(store.snapshots(only={pathway_id for pathway_id, _ in found}))
        return [
            (pathway_id, PathwayFacts.model_validate_json(facts_of[pathway_id]), items) for pathway_id, items in found
        ]

    def _open_milestones(
        self, store: Store, at: datetime | None, on: date | None
    ) -> Iterator[tuple[str, list[Milestone]]]:
        """(id, open milestones) of every pathway with something open, each stored schedule
        read on `on` or on `at`'s date in its zone. A row from before migration 0008 has no
        schedule, and one planned by an earlier release's rules is not trusted: their facts
        give it (`hsct db upgrade` stores them)."""
        when = aware(at, command="milestones") if at is not None else self.clock.now()
        rows = store.schedules()
        unscheduled = {pathway_id for pathway_id, text in rows if not planned_by_these_rules(text)}
        facts_of = dict(store.snapshots(only=unscheduled)) if unscheduled else {}
        days: dict[str, date] = {}  # `when`'s date in each zone met
        for pathway_id, text in rows:
            plan = self._plan(store, pathway_id, text, facts_of)
            if plan is None:
                continue
            zone = plan.timezone
            if on is None and zone not in days:
                days[zone] = clinical_date(when, zone)
            open_items = plan.on(on or days[zone])
            if open_items:
                yield pathway_id, open_items

    def _plan(self, store: Store, pathway_id: str, text: str | None, facts_of: Mapping[str, str]) -> Schedule | None:
        """The pathway's stored schedule, or its facts' when the row stores none planned by these
        rules. IntegrityError (logged) when a text of these rules is not a schedule."""
        if not planned_by_these_rules(text):
            return self._planned(store, PathwayFacts.model_validate_json(facts_of[pathway_id]))
        try:
            return Schedule.loads(text)
        except (ValueError, TypeError):
            logger.error("pathway %s: its stored milestone schedule is not one", pathway_id)
            raise IntegrityError(pathway_id) from None

    def _snapshot(self, pathway_id: str, version: int, facts: PathwayFacts, at: datetime) -> Snapshot:
        anchor = facts.day0 or facts.planned_day0
        day = None if anchor is None else day_number(clinical_date(at, facts.timezone), anchor)
        return Snapshot(
            pathway_id=pathway_id,
            version=version,
            facts=facts,
            at=at,
            day=day,
            day_label=None if day is None else day_label(day),
            neutrophil_recovery_on=neutrophil_recovery_of(facts, self.policy, at),
            platelet_recovery_on=platelet_recovery_of(facts, self.policy, at),
            platelet_recovery_50_on=platelet_recovery_50_of(facts, self.policy, at),
            gvhd_max_grade=max_grade(g for g in facts.gvhd if g.at <= at),
            flags=pathway_flags(facts, self.policy),
        )


class _PatientQuery(BaseModel):
    """A lookup by patient: the reference must be one a referral could have stored."""

    patient_ref: PatientRef


MIN_ID_PREFIX = 6
"""The shortest id prefix `resolve_id` expands: shorter ones are taken as whole ids only."""


def command_name(name: object) -> CommandName:
    """`name` as a `CommandName` when the chart has such a command; else InvalidCommand on
    `command`, with the closest names when it looks misspelt (for names from outside: a URL,
    a message, a file)."""
    if isinstance(name, str) and CHART.get(name) is not None:
        return cast("CommandName", name)
    close = get_close_matches(name, list(CHART.commands), n=3) if isinstance(name, str) else []
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise InvalidCommand(str(name)[:64], [FieldProblem("command", "unknown_command", f"not a trigger or event{hint}")])


class _RefusedHere(Exception):
    """Rolls the host's SAVEPOINT back when a command was refused in it."""


class _PassesNow(Exception):
    """Rolls back a re-recorded refusal that is no longer refused."""


def _success_only(work: Callable[[Store], _Outcome], store: Store) -> _Outcome:
    outcome = work(store)
    if outcome.refusal is not None:
        raise _RefusedHere
    return outcome


class _Sealing:
    """Collect the entries appended in this block (one try of one unit of work). A class, not
    a generator: it runs on every command, and a generator's context manager costs more."""

    __slots__ = ("_token",)

    def __enter__(self) -> list[tuple[Entry, PathwayFacts]]:
        sealed: list[tuple[Entry, PathwayFacts]] = []
        self._token = _SEALED.set(sealed)
        return sealed

    def __exit__(self, *_: object) -> None:
        _SEALED.reset(self._token)


def _label(facts: PathwayFacts, at: datetime) -> str | None:
    return label_at(at, facts.timezone, facts.day0 or facts.planned_day0)


def _provisional(draft: Draft, sequence: int) -> Entry:
    """An unsealed stand-in for the entry being appended, so the fold can include it."""
    return Entry(**draft.model_dump(), sequence=sequence, prev_hash="", hash="")


def _reason_of(body: Payload) -> str | None:
    """The free-text or coded reason a payload gives (holds, withdrawals, corrections)."""
    # The field from the model's __dict__: getattr on a pydantic model without the field
    # raises and catches an AttributeError, which costs more than the rest of this call.
    reason = body.__dict__.get("reason")
    return reason if isinstance(reason, str) else None
