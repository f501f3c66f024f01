"""`hsct diagram`: the chart as a mermaid state diagram, drawn by `transitions` itself.

The diagram is read off the machine `workflow.engine.PathwayEngine` builds from the chart,
so it shows exactly the edges and route conditions the engine fires, never a second list.
docs/diagram.md is generated with `hsct diagram --output docs/diagram.md`; a test fails
when it drifts from the chart. docs/img/chart.svg is the same machine drawn by Graphviz
(`hsct diagram --output docs/img/chart.svg`). No phase is marked unless `--active` asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from states.vocabulary import Phase
from workflow.cli._common import fail

TITLE = "HSCT pathway"

SVG_COMMAND = "hsct diagram --output docs/img/chart.svg"
"""Renders docs/img/chart.svg (needs Graphviz's `dot` and the graphviz package of the docs extra)."""


def mermaid_text(active: Phase | None = None) -> str:
    """The mermaid `stateDiagram-v2` source of the chart, route conditions on the edges; no phase
    is marked unless `active` names one (a chart is not a pathway: nothing is "current")."""
    source: str = _drawing("mermaid", active).source
    return source.rstrip() + "\n"


def svg_text(active: Phase | None = None) -> str:
    """The chart drawn by Graphviz as SVG, the same machine as the mermaid source."""
    svg: bytes = _drawing("graphviz", active).pipe(format="svg")
    return svg.decode("utf-8")


def _drawing(engine_name: Literal["graphviz", "mermaid"], active: Phase | None) -> Any:
    """transitions' drawing of the engine's states and edges, `active` marked if given."""
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
        graph_engine=engine_name,
        show_conditions=True,
        title=TITLE,
    )
    if active is not None:
        graph.set_state(active.value)
    graph.get_graph(title=TITLE, force_new=True)  # marks the machine's own phase as active
    drawing = graph.model_graphs[id(graph)]
    if active is None:
        drawing.reset_styling()  # the machine sits in the initial phase only because it must sit somewhere
    return drawing.get_graph(title=TITLE)


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
        "```mermaid\n" + mermaid_text() + "```\n\n"
        f"The same chart drawn by Graphviz, for viewers without mermaid (`{SVG_COMMAND}`):\n\n"
        "![The pathway chart](img/chart.svg)\n"
    )


def diagram(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", dir_okay=False,
                     help="Write to FILE instead of printing: markdown with a mermaid block for *.md, an SVG "
                     "drawn by Graphviz for *.svg, else the mermaid source."),
    ] = None,
    active: Annotated[
        Phase | None, typer.Option("--active", metavar="PHASE", help="Mark this phase (default: none).")
    ] = None,
) -> None:
    """The chart as a mermaid state diagram (printed, or written to FILE), or an SVG picture."""
    if output is None:
        typer.echo(mermaid_text(active), nl=False)
        return
    if output.suffix == ".md" and active is not None:
        fail("--active does not go with the markdown page: the reference chart marks no phase")
    if output.suffix == ".svg":
        text = _rendered_svg(active)
    else:
        text = markdown() if output.suffix == ".md" else mermaid_text(active)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"diagram written to {output}", err=True)


def _rendered_svg(active: Phase | None) -> str:
    import graphviz  # type: ignore[import-untyped]  # missing: `hsct` names the docs extra

    try:
        return svg_text(active)
    except graphviz.ExecutableNotFound:
        fail("an SVG needs Graphviz's dot program on PATH (Debian: apt-get install graphviz)")
