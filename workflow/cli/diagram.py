"""`hsct diagram`: the chart as a mermaid state diagram, drawn by `transitions` itself.

The diagram is read off the machine `workflow.engine.PathwayEngine` builds from the chart,
so it shows exactly the edges and route conditions the engine fires, never a second list.
docs/diagram.md is generated with `hsct diagram --output docs/diagram.md`; a test fails
when it drifts from the chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

TITLE = "HSCT pathway"


def mermaid_text() -> str:
    """The mermaid `stateDiagram-v2` source of the chart, route conditions on the edges."""
    from transitions.extensions.diagrams import GraphMachine

    from workflow.engine import PathwayEngine

    engine = PathwayEngine().machine
    transitions: list[dict[str, Any]] = [
        {
            "trigger": name,
            "source": transition.source,
            "dest": transition.dest,
            "conditions": [_name(condition.func) for condition in transition.conditions],
        }
        for name, event in engine.events.items()
        for group in event.transitions.values()
        for transition in group
    ]
    graph = GraphMachine(
        states=list(engine.states),
        initial=engine.initial,
        transitions=transitions,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title=TITLE,
    )
    source: str = graph.get_graph(title=TITLE).source
    return source.rstrip() + "\n"


def _name(func: object) -> str:
    """A condition's name: the engine passes named callables (route predicates)."""
    return func if isinstance(func, str) else str(getattr(func, "__name__", func))


def markdown() -> str:
    """docs/diagram.md: a short preface and the mermaid block."""
    return (
        "# The pathway chart\n\n"
        "Generated from the chart by `hsct diagram --output docs/diagram.md`; do not edit by hand "
        "(a test regenerates it and fails on drift). Edges are labelled with their trigger and, in "
        "brackets, the route condition that selects them.\n\n"
        "```mermaid\n" + mermaid_text() + "```\n"
    )


def diagram(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", dir_okay=False,
                     help="Write to FILE instead of printing: markdown with a mermaid block for *.md, else "
                     "the mermaid source."),
    ] = None,
) -> None:
    """The chart as a mermaid state diagram (printed, or written to FILE)."""
    if output is None:
        typer.echo(mermaid_text(), nl=False)
        return
    text = markdown() if output.suffix == ".md" else mermaid_text()
    output.write_text(text, encoding="utf-8")
    typer.echo(f"diagram written to {output}", err=True)
