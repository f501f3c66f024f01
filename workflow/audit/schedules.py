"""The stored milestone schedule against the facts it was derived from (`audit verify`).

`pathways.schedule` (migration 0008) is derived data outside the hash chain: the worklist
reads it instead of the facts, so a changed schedule could hide a due or overdue milestone
while every hash still verifies. The verifier therefore recomputes each stored schedule from
the verified facts under the pathway's registered policy and reports a difference; the series
rows are put back into the facts only in a phase whose plan reads them (`SERIES_PLANNED_IN`).
NULL (a row from before 0008), or a plan made by an earlier release's rules
(`states.milestones.RULES`), is not a difference: the worklist reads the facts of such a row
instead, and `hsct db upgrade` stores its plan anew. A pathway whose policy version the
registry does not hold (from before migration 0004) is not checked: which policy its service
fell back to is not recorded anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from states.errors import PolicyError
from states.facts import PathwayFacts
from states.milestones import planned_by_these_rules, schedule
from states.policy import Policy, policy_from_canonical

__all__ = ["ScheduleCheck"]


class ScheduleCheck:
    """Compares stored schedules with the facts', reading each registered policy once."""

    __slots__ = ("_contents", "_policies")

    def __init__(self, contents: Mapping[str, str]) -> None:
        self._contents = contents  # registered policy texts by version
        self._policies: dict[str, Policy | None] = {}

    def problem(self, facts_text: str, stored: str) -> str | None:
        """Why `stored` is not the schedule of the facts JSON `facts_text`; None when it is
        (or when the pathway's policy is not registered, or `stored` was planned by other rules,
        which nothing reads). No stored value is quoted. `facts_text` is the whole facts, or,
        for a pathway whose phase is not in `SERIES_PLANNED_IN`, the facts without their series
        (`persistence.series.without_series`): the plan is the same, and parsing the series
        would cost more than the rest of the check."""
        if not planned_by_these_rules(stored):
            return None
        try:
            facts = PathwayFacts.model_validate_json(facts_text)
        except ValueError:
            return "the stored facts do not parse, so the stored milestone schedule cannot be checked"
        policy = self._policy(facts.policy_version)
        if policy is None or schedule(facts, policy).dumps() == stored:
            return None
        return "the stored milestone schedule is not the one the stored facts give"

    def _policy(self, version: str | None) -> Policy | None:
        if version is None or version not in self._contents:
            return None
        if version not in self._policies:
            try:
                self._policies[version] = policy_from_canonical(self._contents[version])
            except PolicyError:
                self._policies[version] = None
        return self._policies[version]
