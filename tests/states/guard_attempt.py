"""One guard judged on a hand-built snapshot, with no chart and no database: the quickest way
to pin a rule's boundary (docs/testing.md, "Mutation check of the guard tests")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from states.days import clinical_date
from states.facts import PathwayFacts
from states.payloads import Payload
from states.policy import Policy
from states.verdict import Attempt
from states.vocabulary import Role

POLICY = Policy()


def snapshot(**fields: Any) -> PathwayFacts:
    """A matched-unrelated PBSC pathway in donor workup, with `fields` changed."""
    base = {
        "phase": "donor_workup",
        "route": "allogeneic",
        "donor_type": "matched_unrelated",
        "graft_source": "pbsc",
        "patient_ref": "PT-0000AA",
    }
    return PathwayFacts.model_validate({**base, **fields})


def attempt(facts: PathwayFacts, payload: Payload, at: datetime, policy: Policy = POLICY) -> Attempt:
    """The attempt a physician makes at `at` (its clinical date in the pathway's timezone)."""
    return Attempt(
        command="test",
        facts=facts,
        payload=payload,
        at=at,
        on=clinical_date(at, facts.timezone),
        actor_id="dr-test",
        actor_role=Role.TRANSPLANT_PHYSICIAN,
        policy=policy,
    )
