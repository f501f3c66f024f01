"""The one `transitions` machine every pathway shares, generated from the chart.

No machine per patient and no `add_model`: each firing moves a throw-away token that holds
only the phase, through `machine.events[name].trigger(token, ...)`. `auto_transitions=False`
(no guard-bypassing `to_<phase>()`), invalid triggers raise, no queued mode, and route
predicates are passed as callables so nothing is looked up on a model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from transitions import Machine, MachineError

from states.chart import CHART, ROUTE_PREDICATES, Chart
from states.facts import PathwayFacts
from states.policy import Policy
from states.vocabulary import Phase

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class EngineMismatch(RuntimeError):
    """The machine and the judged chart disagree: a bug, never a clinical refusal."""


class _Token:
    """What the machine moves: a phase and nothing else."""

    __slots__ = ("state",)

    def __init__(self, phase: Phase) -> None:
        self.state = phase.value


def _condition(name: str) -> Callable[[Any], bool]:
    predicate = ROUTE_PREDICATES[name]

    def check(event: Any) -> bool:
        return predicate(event.kwargs["facts"], event.kwargs["policy"])

    check.__name__ = name
    return check


class PathwayEngine:
    """Builds the shared machine once; `fire` returns the phase a trigger leads to."""

    def __init__(self, chart: Chart = CHART) -> None:
        transitions = [
            {
                "trigger": command.name,
                "source": edge.source.value,
                "dest": edge.dest.value,
                "conditions": [_condition(edge.when)] if edge.when else [],
            }
            for command in chart.triggers
            for edge in command.edges
        ]
        self.machine = Machine(
            model=None,
            states=[p.value for p in Phase],
            initial=chart.initial_phase.value,
            transitions=transitions,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
            queued=False,
        )

    def fire(self, phase: Phase, trigger: str, facts: PathwayFacts, policy: Policy) -> Phase:
        token = _Token(phase)
        try:
            moved = self.machine.events[trigger].trigger(token, facts=facts, policy=policy)
        except (MachineError, KeyError) as exc:
            raise EngineMismatch(f"{trigger} cannot fire from {phase}") from exc
        if not moved:
            raise EngineMismatch(f"{trigger} from {phase}: no route condition held")
        return Phase(token.state)
