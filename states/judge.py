"""Judging one attempt: role, phase, time and guards, in that order, all reasons collected.

Pure: the service hands in the snapshot, the payload, who, when and the policy; the verdict
and the destination come back. The same function answers `can_fire` and `available`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from states.chart import CHART, Chart, Command
from states.days import clinical_date
from states.facts import PathwayFacts
from states.guards import run_guards
from states.payloads import Payload
from states.policy import Policy
from states.verdict import Attempt, Verdict, combine, refuse
from states.vocabulary import Phase, Role

# Commands still accepted on a pathway closed by a subsequent transplant.
AFTER_SUPERSEDED = frozenset({"correct_entry", "record_death"})


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    destination: Phase | None

    @property
    def passed(self) -> bool:
        return self.verdict.passed


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
    if at > now + timedelta(minutes=policy.future_tolerance_minutes):
        checks.append(refuse("effective_time_in_future"))
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
