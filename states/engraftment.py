"""Recovery dates of a pathway, as the policy defines them, from the labs known by a time.

One place that binds the snapshot and the policy to the pure rules of `states.recovery`, for
the guards, the milestones and the snapshot alike.
"""

from __future__ import annotations

from datetime import date, datetime

from states.facts import PathwayFacts
from states.policy import Policy
from states.recovery import neutrophil_recovery, platelet_recovery


def neutrophil_recovery_of(facts: PathwayFacts, policy: Policy, until: datetime | None = None) -> date | None:
    """First of 3 values >= 0.5 on different days after the nadir [F:CIBMTR-ANC]."""
    if facts.day0 is None:
        return None
    return neutrophil_recovery(
        [lab for lab in facts.labs if until is None or lab.at <= until],
        facts.day0,
        facts.timezone,
        anc_x10e9_per_l=policy.anc_recovery_x10e9_per_l,
        consecutive_values=policy.recovery_consecutive_values,
        nadir_anc_x10e9_per_l=policy.anc_nadir_x10e9_per_l,
    )


def platelet_recovery_of(facts: PathwayFacts, policy: Policy, until: datetime | None = None) -> date | None:
    """First of 3 values >= 20 with no platelet transfusion in the 7 days ending that day [F:CIBMTR-PLT]."""
    if facts.day0 is None:
        return None
    return platelet_recovery(
        [lab for lab in facts.labs if until is None or lab.at <= until],
        [t for t in facts.transfusions if until is None or t.at <= until],
        facts.day0,
        tz=facts.timezone,
        platelets_x10e9_per_l=policy.platelet_recovery_x10e9_per_l,
        consecutive_values=policy.recovery_consecutive_values,
        transfusion_free_days=policy.platelet_transfusion_free_days,
    )
