"""Judging one attempt: role, phase, time and guards, in that order, all reasons collected.

Pure: the service hands in the snapshot, the payload, who, when and the policy; the verdict
and the destination come back. The same function answers `can_fire` and `available`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from states.chart import CHART, INITIAL_COMMAND, Chart, Command
from states.days import clinical_date
from states.facts import PathwayFacts
from states.guards import run_guards
from states.payloads import Payload
from states.policy import Policy
from states.verdict import Attempt, Verdict, combine, refuse
from states.vocabulary import Phase, Role

# Commands still accepted on a pathway closed by a subsequent transplant or a reinstatement.
AFTER_SUPERSEDED = frozenset({"correct_entry", "record_death", "record_product_disposition"})


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    destination: Phase | None

    @property
    def passed(self) -> bool:
        return self.verdict.passed


def judge_referral(*, actor_role: Role, at: datetime, now: datetime, policy: Policy) -> Verdict:
    """A referral: the role may refer, and its time lies between `earliest_referral_days` back
    and the future tolerance ahead of now (docs/decisions.md "Time")."""
    checks = [] if policy.may(actor_role, INITIAL_COMMAND) else [refuse("role_not_permitted")]
    checks.append(_time_bounds(at, now, policy, earliest=None))
    if at < now - timedelta(days=policy.earliest_referral_days):
        checks.append(refuse("referral_too_early"))
    return combine(checks)


def _time_bounds(at: datetime, now: datetime, policy: Policy, *, earliest: datetime | None) -> Verdict:
    """Not after now plus the clock-skew tolerance; not before the pathway's referral."""
    reasons = []
    if at > now + timedelta(minutes=policy.future_tolerance_minutes):
        reasons.append("effective_time_in_future")
    if earliest is not None and at < earliest:
        reasons.append("effective_time_before_referral")
    return refuse(*reasons)


def judge(
    command: Command,
    facts: PathwayFacts,
    payload: Payload,
    *,
    actor_id: str,
    actor_role: Role,
    at: datetime,
    now: datetime,
    policy: Policy,
    chart: Chart = CHART,
) -> Judgement:
    """Every reason the attempt fails, or a pass with the phase it leads to."""
    checks = []
    if not policy.may(actor_role, command.name):
        checks.append(refuse("role_not_permitted"))
    destination = None
    if command.changes_phase:
        destination = chart.destination(command, facts, policy)
        if destination is None:
            checks.append(refuse("trigger_not_allowed_in_phase"))
    elif facts.phase not in command.allowed_in:
        checks.append(refuse("event_not_allowed_in_phase"))
    if facts.next_pathway is not None and command.name not in AFTER_SUPERSEDED:
        checks.append(refuse("pathway_superseded"))
    checks.append(_time_bounds(at, now, policy, earliest=facts.referred_at))
    attempt = Attempt(
        command=command.name,
        facts=facts,
        payload=payload,
        at=at,
        on=clinical_date(at, facts.timezone),
        actor_id=actor_id,
        actor_role=actor_role,
        policy=policy,
    )
    checks.append(run_guards(command.guards, attempt))
    verdict = combine(checks)
    return Judgement(verdict=verdict, destination=destination if verdict.passed else None)
