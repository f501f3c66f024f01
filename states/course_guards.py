"""Guards for a course that leaves the planned path: a suspected graft failure and a withdrawn
patient's reinstatement (docs/disease-course.md). Registered in `states.guards.GUARDS`."""

from __future__ import annotations

from datetime import timedelta

from states.course_payloads import SuspectGraftFailure
from states.verdict import PASS, Attempt, Verdict, refuse


def graft_failure_suspicion_fits(a: Attempt) -> Verdict:
    """One open suspicion at a time; donor chimerism and autologous reconstitution (the
    recipient's own marrow returning) exist only after an allogeneic graft [F:ASTCT]."""
    assert isinstance(a.payload, SuspectGraftFailure)
    reasons = ["graft_failure_already_suspected"] if a.facts.graft_failure_suspicion is not None else []
    donor_evidence = a.payload.kind == "autologous_reconstitution" or a.payload.donor_chimerism_pct is not None
    if donor_evidence and not a.facts.is_allogeneic:
        reasons.append("suspicion_needs_donor_graft")
    return refuse(*reasons)


def graft_failure_suspected(a: Attempt) -> Verdict:
    """Only a standing suspicion can be cleared."""
    return PASS if a.facts.graft_failure_suspicion is not None else refuse("graft_failure_not_suspected")


def reinstatement_in_window(a: Attempt) -> Verdict:
    """A withdrawn patient is taken back within `reinstatement_window_days` of the withdrawal;
    later the work-up starts again from a new referral (docs/decisions.md). The stored products
    go with the patient to the linked pathway: the library derives which."""
    ended = a.facts.ended_on
    window = timedelta(days=a.policy.reinstatement_window_days)
    if ended is None or a.on - ended > window:
        return refuse("reinstatement_window_passed")
    return Verdict(derived={"carried_products": tuple(p.product_id for p in a.facts.stored_products())})
