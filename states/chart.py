"""The chart as data (docs/diagram.md, docs/commands.md): phase-changing triggers, events, their guards and payloads.

The chart is validated when built (one initial phase, every phase reachable, no edge out of a
final phase, out of a closed phase only into a final one, every guard, route predicate and
payload resolvable). The `transitions` machine in `workflow.engine` is generated from it;
nothing else defines an edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from states import care_payloads as care
from states import course_payloads as cp
from states import payloads as pl
from states.errors import ChartError
from states.facts import PathwayFacts
from states.guards import GUARDS, graft_frozen_first
from states.policy import DEFAULT_ROLES, Policy
from states.vocabulary import CLOSED_PHASES, FINAL_PHASES, PRE_CONDITIONING_PHASES, Phase

RoutePredicate = Callable[[PathwayFacts, Policy], bool]


def _collect_before_conditioning(facts: PathwayFacts, policy: Policy) -> bool:
    """`clear_donor` leads to collection when the graft is stored before conditioning."""
    return graft_frozen_first(facts, policy)


def _held_from(phase: Phase) -> RoutePredicate:
    def held(facts: PathwayFacts, policy: Policy) -> bool:
        return facts.held_from is phase

    held.__name__ = f"held_from_{phase.value}"
    return held


ROUTE_PREDICATES: dict[str, RoutePredicate] = {
    "allogeneic": lambda facts, policy: facts.is_allogeneic,
    "autologous": lambda facts, policy: not facts.is_allogeneic,
    "collect_before_conditioning": _collect_before_conditioning,
    "no_collection_before_conditioning": lambda facts, policy: not _collect_before_conditioning(facts, policy),
    **{f"held_from_{p.value}": _held_from(p) for p in PRE_CONDITIONING_PHASES},
}


@dataclass(frozen=True)
class Edge:
    """One way a trigger moves a pathway; `when` names a route predicate (None: always)."""

    source: Phase
    dest: Phase
    when: str | None = None


@dataclass(frozen=True)
class Command:
    """A trigger or an event: its payload model, its guards and the phases it may act in."""

    name: str
    payload: type[pl.Payload]
    guards: tuple[str, ...] = ()
    edges: tuple[Edge, ...] = ()
    allowed_in: frozenset[Phase] = frozenset()

    @property
    def changes_phase(self) -> bool:
        return bool(self.edges)

    def phases(self) -> frozenset[Phase]:
        return frozenset(e.source for e in self.edges) if self.edges else self.allowed_in


def _edges(sources: tuple[Phase, ...] | Phase, dest: Phase, when: str | None = None) -> tuple[Edge, ...]:
    sources = sources if isinstance(sources, tuple) else (sources,)
    return tuple(Edge(s, dest, when) for s in sources)


def _trigger(name: str, payload: type[pl.Payload], edges: tuple[Edge, ...], *guards: str) -> Command:
    return Command(name=name, payload=payload, guards=guards, edges=edges)


def _event(name: str, payload: type[pl.Payload], phases: tuple[Phase, ...], *guards: str) -> Command:
    return Command(name=name, payload=payload, guards=guards, allowed_in=frozenset(phases))


Ph = Phase
OPEN = tuple(p for p in Phase if p not in CLOSED_PHASES)
# Open, or after Day +100: death and transfer still leave `day100_complete` (docs/decisions.md).
NOT_FINAL = tuple(p for p in Phase if p not in FINAL_PHASES)
CLOSED = tuple(p for p in Phase if p in CLOSED_PHASES)
BEFORE_CONDITIONING = (*PRE_CONDITIONING_PHASES, Ph.ON_HOLD)
HOLDABLE = PRE_CONDITIONING_PHASES
CONDITIONING_TO_FOLLOW_UP = (Ph.CONDITIONING, Ph.AWAITING_ENGRAFTMENT, Ph.FOLLOW_UP)
POST_INFUSION = (Ph.AWAITING_ENGRAFTMENT, Ph.FOLLOW_UP)
LAB_PHASES = (*CONDITIONING_TO_FOLLOW_UP, Ph.GRAFT_FAILURE)
# After Day 0, Day +100 included: long-term follow-up (docs/long-term-follow-up.md).
LONG_TERM = (*POST_INFUSION, Ph.DAY100_COMPLETE)
# From conditioning on, Day +100 and graft failure included: infections and immunosuppression.
AFTER_CONDITIONING_STARTS = (Ph.CONDITIONING, *LONG_TERM, Ph.GRAFT_FAILURE)
# From evaluation to conditioning, on hold included: a relapse is the disease status at transplant.
RELAPSE_BEFORE_INFUSION = (*(p for p in PRE_CONDITIONING_PHASES if p is not Ph.REFERRED), Ph.ON_HOLD, Ph.CONDITIONING)

INITIAL_COMMAND = "refer"
INITIAL_PHASE = Ph.REFERRED

_TRIGGERS: tuple[Command, ...] = (
    _trigger("begin_evaluation", pl.Empty, _edges(Ph.REFERRED, Ph.EVALUATION)),
    _trigger(
        "complete_evaluation",
        pl.Empty,
        _edges(Ph.EVALUATION, Ph.DONOR_SEARCH, "allogeneic") + _edges(Ph.EVALUATION, Ph.COLLECTION, "autologous"),
        "consent_recorded",
        "eligibility_documented",
        "allogeneic_typing_complete",
    ),
    _trigger("select_donor", pl.SelectDonor, _edges(Ph.DONOR_SEARCH, Ph.DONOR_WORKUP), "donor_meets_policy"),
    _trigger(
        "release_donor",
        pl.ReleaseDonor,
        _edges((Ph.DONOR_WORKUP, Ph.COLLECTION, Ph.READY_FOR_CONDITIONING), Ph.DONOR_SEARCH, "allogeneic"),
        "route_allogeneic",
    ),
    _trigger(
        "clear_donor",
        pl.ClearDonor,
        _edges(Ph.DONOR_WORKUP, Ph.COLLECTION, "collect_before_conditioning")
        + _edges(Ph.DONOR_WORKUP, Ph.READY_FOR_CONDITIONING, "no_collection_before_conditioning")
        + _edges(Ph.CONDITIONING, Ph.CONDITIONING),
        "donor_selected",
        "donor_idm_current",
        "cord_segments_typed",
        "donor_dsa_acceptable",
    ),
    _trigger(
        "complete_collection",
        pl.CompleteCollection,
        _edges(Ph.COLLECTION, Ph.READY_FOR_CONDITIONING),
        "collection_sufficient",
    ),
    # One patient's allogeneic graft frozen although the policy would infuse it fresh: from
    # ready for conditioning the pathway goes (back) to collection (docs/products.md).
    _trigger(
        "decide_cryopreservation",
        pl.DecideCryopreservation,
        _edges(Ph.DONOR_SEARCH, Ph.DONOR_SEARCH)
        + _edges(Ph.DONOR_WORKUP, Ph.DONOR_WORKUP)
        + _edges(Ph.READY_FOR_CONDITIONING, Ph.COLLECTION)
        + _edges(Ph.CONDITIONING, Ph.CONDITIONING),
        "cryopreservation_decidable",
    ),
    _trigger("hold", pl.Hold, _edges(HOLDABLE, Ph.ON_HOLD)),
    _trigger(
        "resume",
        pl.Resume,
        tuple(Edge(Ph.ON_HOLD, p, f"held_from_{p.value}") for p in PRE_CONDITIONING_PHASES),
    ),
    _trigger(
        "start_conditioning",
        pl.StartConditioning,
        _edges(Ph.READY_FOR_CONDITIONING, Ph.CONDITIONING),
        "consent_recorded",
        "graft_secured",
        "regimen_plausible",
    ),
    _trigger(
        "infuse",
        pl.Infuse,
        _edges(Ph.CONDITIONING, Ph.AWAITING_ENGRAFTMENT),
        "conditioning_complete",
        "products_belong",
        "label_matches_patient",
        "identity_verified",
        "bags_fit_for_infusion",
        "fresh_product_in_time",
        "donor_dsa_acceptable",
        "infused_dose_sufficient",
    ),
    _trigger(
        "confirm_engraftment",
        pl.ConfirmEngraftment,
        _edges(Ph.AWAITING_ENGRAFTMENT, Ph.FOLLOW_UP),
        "neutrophil_recovery_met",
    ),
    _trigger(
        "declare_graft_failure",
        pl.DeclareGraftFailure,
        _edges((Ph.AWAITING_ENGRAFTMENT, Ph.FOLLOW_UP), Ph.GRAFT_FAILURE),
        "graft_failure_criteria",
    ),
    _trigger(
        "rescue_infusion",
        pl.RescueInfusion,
        _edges(Ph.GRAFT_FAILURE, Ph.AWAITING_ENGRAFTMENT),
        "stored_product_available",
        "bags_fit_for_infusion",
        "label_matches_patient",
        "identity_verified",
        "infused_dose_sufficient",
    ),
    _trigger("complete_day100", pl.CompleteDay100, _edges(Ph.FOLLOW_UP, Ph.DAY100_COMPLETE), "day100_ready"),
    _trigger("withdraw", pl.Withdraw, _edges(BEFORE_CONDITIONING, Ph.WITHDRAWN)),
    _trigger("record_death", pl.RecordDeath, _edges(NOT_FINAL, Ph.DECEASED), "not_before_previous_entry"),
    _trigger("transfer", pl.Transfer, _edges(NOT_FINAL, Ph.TRANSFERRED), "not_before_previous_entry"),
    # Before the graft is committed: referral and evaluation stay, an allogeneic donor search and
    # an autologous collection not yet started goes back to evaluation (docs/decisions.md).
    _trigger(
        "change_route",
        pl.ChangeRoute,
        _edges(Ph.REFERRED, Ph.REFERRED)
        + _edges(Ph.EVALUATION, Ph.EVALUATION)
        + _edges(Ph.DONOR_SEARCH, Ph.EVALUATION, "allogeneic")
        + _edges(Ph.COLLECTION, Ph.EVALUATION, "autologous"),
        "route_change_allowed",
    ),
)

_EVENTS: tuple[Command, ...] = (
    _event("record_consent", pl.RecordConsent, (Ph.REFERRED, Ph.EVALUATION)),
    _event("record_eligibility", pl.RecordEligibility, (Ph.REFERRED, Ph.EVALUATION)),
    _event("record_hla_typing", pl.RecordHlaTyping, (Ph.EVALUATION, Ph.DONOR_SEARCH)),
    _event("record_abo_typing", pl.RecordAboTyping, (Ph.EVALUATION,)),
    _event("record_donor_candidate", pl.RecordDonorCandidate, (Ph.DONOR_SEARCH, Ph.DONOR_WORKUP), "route_allogeneic"),
    _event(
        "record_donor_idm",
        pl.RecordDonorIdm,
        # After Day 0 too: a donor collected again for a DLI or boost is tested again.
        (Ph.DONOR_WORKUP, Ph.COLLECTION, Ph.READY_FOR_CONDITIONING, Ph.ON_HOLD, Ph.CONDITIONING, *LONG_TERM),
        "route_allogeneic",
    ),
    _event("start_mobilization", pl.StartMobilization, (Ph.COLLECTION,)),
    _event("report_mobilization_failure", pl.ReportMobilizationFailure, (Ph.COLLECTION,)),
    # A fresh graft's donor is mobilised while the patient is in conditioning (docs/products.md).
    _event(
        "record_donor_mobilization",
        pl.RecordDonorMobilization,
        (Ph.COLLECTION, Ph.CONDITIONING),
        "donor_mobilization_allowed",
    ),
    _event(
        "record_collection",
        pl.RecordCollection,
        # After Day 0 too: a DLI or boost bag is recorded before `record_infusion` names it.
        (Ph.COLLECTION, Ph.CONDITIONING, *LONG_TERM, Ph.GRAFT_FAILURE),
        "collection_donor_current",
    ),
    _event(
        "cryopreserve_product",
        pl.CryopreserveProduct,
        (Ph.COLLECTION, Ph.READY_FOR_CONDITIONING, Ph.ON_HOLD, Ph.CONDITIONING),
        "product_known",
    ),
    # A bag's chain of custody while the pathway is open (docs/products.md).
    *(
        _event(name, payload, OPEN, "bag_action_allowed")
        for name, payload in (
            ("quarantine_bag", pl.QuarantineBag),
            ("release_bag", pl.ReleaseBag),
            ("discard_bag", pl.DiscardBag),
        )
    ),
    _event("record_thaw", pl.RecordThaw, (Ph.CONDITIONING, *LONG_TERM, Ph.GRAFT_FAILURE), "bag_action_allowed"),
    _event("record_conditioning_dose", pl.RecordConditioningDose, (Ph.CONDITIONING,), "dose_in_plan"),
    _event("report_donor_unavailable", pl.ReportDonorUnavailable, (Ph.CONDITIONING,), "route_allogeneic"),
    _event("select_emergency_donor", pl.SelectEmergencyDonor, (Ph.CONDITIONING,), "emergency_donor_known"),
    _event("record_lab", pl.RecordLab, LAB_PHASES),
    _event("record_transfusion", pl.RecordTransfusion, LAB_PHASES),
    _event("confirm_platelet_engraftment", pl.ConfirmPlateletEngraftment, POST_INFUSION, "platelet_recovery_met"),
    _event("record_chimerism", pl.RecordChimerism, (*LONG_TERM, Ph.GRAFT_FAILURE)),
    _event("record_gvhd_assessment", pl.RecordGvhdAssessment, LONG_TERM, "route_allogeneic"),
    _event("record_chronic_gvhd", pl.RecordChronicGvhd, LONG_TERM, "route_allogeneic"),
    _event("record_vod_assessment", pl.RecordVodAssessment, CONDITIONING_TO_FOLLOW_UP),
    # Before infusion too, and in graft failure: the disease does not wait (docs/disease-course.md).
    _event(
        "report_relapse",
        pl.ReportRelapse,
        (*RELAPSE_BEFORE_INFUSION, Ph.GRAFT_FAILURE, *LONG_TERM),
        "relapse_not_before_day0",
    ),
    _event("suspect_graft_failure", cp.SuspectGraftFailure, POST_INFUSION, "graft_failure_suspicion_fits"),
    _event("clear_graft_failure_suspicion", cp.ClearGraftFailureSuspicion, POST_INFUSION, "graft_failure_suspected"),
    _event(
        "record_infusion",
        pl.RecordInfusion,
        LONG_TERM,
        "products_belong",
        "bags_fit_for_infusion",
        "label_matches_patient",
        "identity_verified",
    ),
    _event("record_adverse_event", pl.RecordAdverseEvent, NOT_FINAL),
    # Supportive care and GVHD prophylaxis (docs/supportive-care.md).
    _event("admit", care.Admit, (Ph.READY_FOR_CONDITIONING, Ph.CONDITIONING, Ph.AWAITING_ENGRAFTMENT), "stay_fits"),
    _event("discharge", pl.Discharge, POST_INFUSION, "stay_fits"),
    _event("readmit", pl.Readmit, POST_INFUSION, "stay_fits"),
    _event("start_growth_factor", care.StartGrowthFactor, POST_INFUSION, "growth_factor_day_fits"),
    _event("record_infection", care.RecordInfection, AFTER_CONDITIONING_STARTS, "infection_onset_fits"),
    _event("record_mucositis", care.RecordMucositis, CONDITIONING_TO_FOLLOW_UP),
    _event(
        "plan_gvhd_prophylaxis",
        care.PlanGvhdProphylaxis,
        (Ph.DONOR_WORKUP, Ph.COLLECTION, Ph.READY_FOR_CONDITIONING, Ph.ON_HOLD, Ph.CONDITIONING, *POST_INFUSION),
        "route_allogeneic",
        "prophylaxis_plan_fits",
    ),
    _event(
        "record_prophylaxis_dose",
        care.RecordProphylaxisDose,
        AFTER_CONDITIONING_STARTS,
        "route_allogeneic",
        "prophylaxis_dose_in_plan",
    ),
    _event("record_assessment", pl.RecordAssessment, (Ph.FOLLOW_UP, Ph.DAY100_COMPLETE)),
    _event(
        "start_subsequent_transplant",
        pl.StartSubsequentTransplant,
        (Ph.GRAFT_FAILURE, Ph.FOLLOW_UP, Ph.DAY100_COMPLETE),
        "subsequent_transplant_allowed",
        "tandem_products_carried",
    ),
    # A linked new pathway of the same transplant, never a way out of `withdrawn` (docs/decisions.md).
    _event("reinstate", cp.Reinstate, (Ph.WITHDRAWN,), "reinstatement_in_window"),
    _event("record_registry_form", pl.RecordRegistryForm, tuple(Phase)),
    _event("correct_entry", pl.CorrectEntry, tuple(Phase)),
    _event("adopt_policy", pl.AdoptPolicy, OPEN, "policy_differs"),
    # After the pathway closes: every product left needs a disposition (docs/long-term-follow-up.md).
    _event("record_product_disposition", pl.RecordProductDisposition, CLOSED, "product_disposable"),
)


@dataclass(frozen=True)
class Chart:
    commands: Mapping[str, Command]
    initial_phase: Phase = INITIAL_PHASE

    def get(self, name: str) -> Command | None:
        return self.commands.get(name)

    @property
    def triggers(self) -> list[Command]:
        return [c for c in self.commands.values() if c.changes_phase]

    @property
    def events(self) -> list[Command]:
        return [c for c in self.commands.values() if not c.changes_phase]

    def destination(self, command: Command, facts: PathwayFacts, policy: Policy) -> Phase | None:
        """Where `command` would take `facts` (first matching edge), None when no edge applies."""
        for edge in command.edges:
            if edge.source is facts.phase and (edge.when is None or ROUTE_PREDICATES[edge.when](facts, policy)):
                return edge.dest
        return None


def build_chart(commands: tuple[Command, ...]) -> Chart:
    """Validate and freeze a chart; raise `ChartError` naming every problem."""
    problems: list[str] = []
    by_name: dict[str, Command] = {}
    for command in commands:
        if command.name in by_name or command.name == INITIAL_COMMAND:
            problems.append(f"{command.name}: defined twice")
        by_name[command.name] = command
        problems += [f"{command.name}: unknown guard {g!r}" for g in command.guards if g not in GUARDS]
        for edge in command.edges:
            if edge.when is not None and edge.when not in ROUTE_PREDICATES:
                problems.append(f"{command.name}: unknown route predicate {edge.when!r}")
            if edge.source in FINAL_PHASES:
                problems.append(f"{command.name}: edge out of final phase {edge.source}")
            elif edge.source in CLOSED_PHASES and edge.dest not in FINAL_PHASES:
                # A closed pathway never reopens: a new referral may already be open beside it.
                problems.append(
                    f"{command.name}: edge from closed phase {edge.source} to {edge.dest}, not a final phase"
                )
        if command.edges and command.allowed_in:
            problems.append(f"{command.name}: a trigger has edges, an event has phases, not both")
        if not issubclass(command.payload, pl.Payload):
            problems.append(f"{command.name}: payload is not a Payload model")
    missing_roles = (set(by_name) | {INITIAL_COMMAND}) ^ set(DEFAULT_ROLES)
    problems += [f"{name}: in the role table xor the chart" for name in sorted(missing_roles)]
    reachable = {INITIAL_PHASE}
    frontier = [INITIAL_PHASE]
    while frontier:
        here = frontier.pop()
        for command in by_name.values():
            for edge in command.edges:
                if edge.source is here and edge.dest not in reachable:
                    reachable.add(edge.dest)
                    frontier.append(edge.dest)
    problems += [f"phase {p} is unreachable from {INITIAL_PHASE}" for p in Phase if p not in reachable]
    if problems:
        raise ChartError("invalid chart: " + "; ".join(problems))
    return Chart(commands=dict(by_name))


CHART = build_chart(_TRIGGERS + _EVENTS)
