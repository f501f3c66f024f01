"""What moving a running pathway to another policy would change: the dry run of `adopt_policy`.

A policy change can open, close or move milestones (windows, thresholds) and turn verdicts
(role table, guards' thresholds). The preview judges the pathway as it stands under both
policies and lists what differs; nothing is written. docs/versioning.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from persistence.policies import PolicyBook
from states.chart import CHART
from states.days import clinical_date
from states.errors import FieldProblem, InvalidCommand
from states.facts import PathwayFacts
from states.judge import judge
from states.milestones import Milestone, milestones
from states.policy import Policy
from states.vocabulary import Role
from workflow.service import PathwayService

PREVIEW_ACTOR = "policy-preview"


@dataclass(frozen=True)
class VerdictChange:
    """A command a role would be judged differently on: the reasons under each policy
    (empty: it would pass). Commands that need a payload are compared on the role table only."""

    command: str
    role: Role
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass(frozen=True)
class PolicyChangePreview:
    pathway_id: str
    current: str
    target: str
    milestones_before: tuple[Milestone, ...]
    milestones_after: tuple[Milestone, ...]
    verdicts: tuple[VerdictChange, ...]

    @property
    def milestones_changed(self) -> bool:
        return self.milestones_before != self.milestones_after


def _reasons(command: str, role: Role, facts: PathwayFacts, policy: Policy, at: datetime) -> tuple[str, ...]:
    spec = CHART.commands[command]
    try:
        body = spec.payload.model_validate({})
    except ValueError:
        return () if policy.may(role, command) else ("role_not_permitted",)
    judged = judge(spec, facts, body, actor_id=PREVIEW_ACTOR, actor_role=role, at=at, now=at, policy=policy)
    return judged.verdict.reasons


def verdict_changes(facts: PathwayFacts, before: Policy, after: Policy, at: datetime) -> list[VerdictChange]:
    """Every (command, role) allowed in the pathway's phase under either policy whose verdict differs."""
    changes = []
    for spec in CHART.commands.values():
        if facts.phase not in spec.phases():
            continue
        roles = before.roles.get(spec.name, frozenset()) | after.roles.get(spec.name, frozenset())
        for role in (r for r in Role if r in roles):
            old = _reasons(spec.name, role, facts, before, at)
            new = _reasons(spec.name, role, facts, after, at)
            if old != new:
                changes.append(VerdictChange(spec.name, role, old, new))
    return changes


def preview_policy_change(
    service: PathwayService, pathway_id: str, version: str, *, at: datetime | None = None
) -> PolicyChangePreview:
    """Judge the pathway now under its policy and under `version` (a registered one)."""
    when = at or service.clock.now()
    facts = service.snapshot(pathway_id, at=when).facts
    book = PolicyBook(service.policy)
    with service.engine.connect() as connection:
        current = book.get(connection, facts.policy_version) if facts.policy_version else None
        target = book.get(connection, version)
    if target is None:
        problem = FieldProblem("version", "policy_version_unknown", "not in the policy registry")
        raise InvalidCommand("adopt_policy", [problem])
    # A version the registry lacks (or none) is judged under the service's policy, as the service does.
    before, name = (service.policy, service.policy.version_id) if current is None else (current, facts.policy_version)
    on = clinical_date(when, facts.timezone)
    return PolicyChangePreview(
        pathway_id=pathway_id,
        current=name or service.policy.version_id,
        target=version,
        milestones_before=tuple(milestones(facts, before, on)),
        milestones_after=tuple(milestones(facts, target, on)),
        verdicts=tuple(verdict_changes(facts, before, target, when)),
    )
