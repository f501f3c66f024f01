"""A patient's course on one picture: phases, blood counts, recoveries, infusions, transfusions,
GVHD, VOD and open milestones on a Day axis (docs/timeline.md).

Two halves. `timeline_data` is pure: it turns a snapshot, its log entries and the policy into
the series and markers to plot, so tests can check what the picture says (a recovery marker on
the Day the policy's rule gives) without looking at pixels. `render` draws that with
matplotlib (the optional `timeline` extra, imported only here) into one self-contained SVG,
PNG or HTML file: no network, no scripts, text kept as text so a browser or a test can read it.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from states.days import clinical_date, day_label, day_number
from states.engraftment import neutrophil_recovery_of, platelet_recovery_of
from states.errors import HsctError
from states.flags import vod_met
from states.gvhd import organ_stages, overall_grade
from states.milestones import milestones
from states.vocabulary import EntryKind, Phase

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from states.entry import Entry
    from states.policy import Policy
    from workflow.service import Snapshot

FORMATS = (".html", ".svg", ".png")
_GRADES = ("0", "I", "II", "III", "IV")
_INFUSIONS = {"day0": "Day 0 infusion", "second_day": "second-day infusion", "boost": "boost",
              "dli": "DLI", "rescue": "rescue infusion"}


@dataclass(frozen=True)
class Point:
    day: int
    value: float


@dataclass(frozen=True)
class Mark:
    """Something that happened (or falls due) on a Day."""

    day: int
    label: str


@dataclass(frozen=True)
class Band:
    """The pathway stood in `phase` from Day `first` to Day `last`."""

    first: int
    last: int
    phase: Phase


@dataclass(frozen=True)
class TimelineData:
    """Everything the picture shows, in Day numbers counted from `anchor`."""

    pathway_id: str
    title: str
    anchor: date
    anchor_kind: str
    first_day: int
    last_day: int
    as_of: date
    phases: tuple[Band, ...]
    anc: tuple[Point, ...]
    platelets: tuple[Point, ...]
    anc_threshold: float
    platelet_threshold: float
    recoveries: tuple[Mark, ...]
    infusions: tuple[Mark, ...]
    transfusions: tuple[Mark, ...]
    gvhd: tuple[Mark, ...]
    vod: tuple[Mark, ...]
    milestones: tuple[Mark, ...]

    @property
    def axis_label(self) -> str:
        return f"Day (Day 0 = {self.anchor_kind} {self.anchor.isoformat()})"


def timeline_data(snap: Snapshot, entries: Sequence[Entry], policy: Policy) -> TimelineData:
    """The series and markers of `snap` (the entries are its log, for the phase bands), the
    recoveries and thresholds by `policy`'s rules.

    The axis runs from the first conditioning day (the referral when there is none) to the
    Day +100 time point, or further when anything on the picture lies later. Day numbers
    count from Day 0, else the planned Day 0, else the referral date.
    """
    facts = snap.facts
    zone = facts.timezone
    referral = clinical_date(entries[0].effective_at, zone) if entries else clinical_date(snap.at, zone)
    anchor, anchor_kind = (
        (facts.day0, "infusion")
        if facts.day0
        else (facts.planned_day0, "planned")
        if facts.planned_day0
        else (referral, "referral")
    )

    def day_at(at: datetime) -> int:
        return day_number(clinical_date(at, zone), anchor)

    as_of = clinical_date(snap.at, zone)
    anc = tuple(Point(day_at(lab.at), lab.anc_x10e9_per_l) for lab in facts.labs if lab.anc_x10e9_per_l is not None)
    platelets = tuple(
        Point(day_at(lab.at), lab.platelets_x10e9_per_l) for lab in facts.labs if lab.platelets_x10e9_per_l is not None
    )
    recovered = (
        ("ANC", neutrophil_recovery_of(facts, policy, snap.at)),
        ("platelet", platelet_recovery_of(facts, policy, snap.at)),
    )
    recoveries = tuple(
        Mark(day_number(on, anchor), f"{name} recovery {day_label(day_number(on, anchor))}")
        for name, on in recovered
        if on is not None
    )
    infusions = tuple(Mark(day_at(i.at), _INFUSIONS[i.kind]) for i in facts.infusions)
    transfusions = tuple(Mark(day_at(t.at), f"{t.product.replace('_', ' ')} transfusion") for t in facts.transfusions)
    gvhd = tuple(Mark(day_at(g.at), f"aGVHD grade {_GRADES[overall_grade(organ_stages(g))]}") for g in facts.gvhd)
    vod = tuple(
        Mark(day_at(v.at), "VOD" if vod_met(v, day_at(v.at), policy) else "VOD criteria not met") for v in facts.vod
    )
    due = tuple(
        Mark(day_number(m.due_on, anchor), f"{m.status}: {m.name}") for m in milestones(facts, policy, as_of)
    )
    first_day = day_number(facts.conditioning_started_on or referral, anchor)
    plotted = [p.day for p in (*anc, *platelets)] + [
        m.day for m in (*recoveries, *infusions, *transfusions, *gvhd, *vod, *due)
    ]
    last_day = max([policy.post_transplant_form_day, *plotted])
    donor = f" {facts.donor_type.value.replace('_', ' ')}" if facts.donor_type else ""
    return TimelineData(
        pathway_id=snap.pathway_id,
        title=f"pathway {snap.pathway_id}: {facts.route.value}{donor}, "
        f"{facts.graft_source.value.replace('_', ' ')}, HCT {facts.hct_number}, as of {as_of.isoformat()}",
        anchor=anchor,
        anchor_kind=anchor_kind,
        first_day=first_day,
        last_day=last_day,
        as_of=as_of,
        phases=_bands(entries, snap, day_at, first_day, last_day),
        anc=anc,
        platelets=platelets,
        anc_threshold=policy.anc_recovery_x10e9_per_l,
        platelet_threshold=policy.platelet_recovery_x10e9_per_l,
        recoveries=recoveries,
        infusions=infusions,
        transfusions=transfusions,
        gvhd=gvhd,
        vod=vod,
        milestones=due,
    )


def _bands(
    entries: Sequence[Entry], snap: Snapshot, day_at: Callable[[datetime], int], first_day: int, last_day: int
) -> tuple[Band, ...]:
    """Phase intervals from the transitions in the log, clipped to the axis (a phase left on
    the day it was entered has no width and no band)."""
    moves = [(day_at(e.effective_at), e.to_phase) for e in entries if e.kind is EntryKind.TRANSITION and e.to_phase]
    if not moves:
        moves = [(first_day, snap.phase)]
    bands = []
    for (start, phase), (end, _) in zip(moves, [*moves[1:], (last_day, snap.phase)], strict=True):
        first, last = max(start, first_day), min(end, last_day)
        if last > first:
            bands.append(Band(first, last, phase))
    return tuple(bands)


# --- drawing ---------------------------------------------------------------------------------

_EVENT_ROWS = ("infusions", "transfusions", "gvhd", "vod", "milestones")
_ROW_NAMES = {"infusions": "infusion", "transfusions": "transfusion", "gvhd": "GVHD", "vod": "VOD",
              "milestones": "milestone"}
_ROW_COLOURS = {"infusions": "#1f77b4", "transfusions": "#d62728", "gvhd": "#9467bd", "vod": "#8c564b",
                "milestones": "#ff7f0e"}


def render(data: TimelineData, out: Path) -> None:
    """Write the picture to `out`: .svg or .png as drawn, .html as a page with the SVG inline
    and the same facts as text. Raises HsctError for another suffix or without matplotlib."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise HsctError(f"a timeline is written as {', '.join(FORMATS)}, not {suffix or 'a file without suffix'}")
    try:
        import matplotlib
    except ImportError:
        raise HsctError("drawing a timeline needs matplotlib: pip install 'hsct-pathway[timeline]'") from None
    # Text stays text in the SVG (a browser and a test read it); ids are stable between runs.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "hsct-timeline", "font.size": 9}):
        figure = _figure(data)
        if suffix == ".png":
            figure.savefig(out, format="png", dpi=110, metadata={"Software": None})
            return
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    out.write_text(svg if suffix == ".svg" else _page(data, svg), encoding="utf-8")


def _figure(data: TimelineData) -> Figure:
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    figure = Figure(figsize=(13, 8.5), layout="constrained")
    anc_axes, plt_axes, events = figure.subplots(3, 1, sharex=True, height_ratios=(3, 3, 2.2))
    figure.suptitle(data.title, fontsize=10, x=0.01, ha="left")
    palette = matplotlib.colormaps["Set3"]
    colour = {phase: palette(n % palette.N) for n, phase in enumerate(Phase)}
    for axes in (anc_axes, plt_axes, events):
        for band in data.phases:
            axes.axvspan(band.first, band.last, color=colour[band.phase], alpha=0.35, lw=0)
        for mark in data.recoveries:
            axes.axvline(mark.day, color="#2ca02c", lw=1.2, ls="--")
    shown = list(dict.fromkeys(band.phase for band in data.phases))
    anc_axes.legend(
        handles=[Patch(color=colour[p], alpha=0.35, label=p.value.replace("_", " ")) for p in shown],
        title="phase", loc="lower left", bbox_to_anchor=(0, 1.01), ncols=len(shown) or 1, fontsize=8,
        title_fontsize=8, frameon=False,
    )
    _counts(anc_axes, data.anc, data.anc_threshold, "ANC (x10^9/L)", "#1f77b4", log=True)
    _counts(plt_axes, data.platelets, data.platelet_threshold, "Platelets (x10^9/L)", "#d62728", log=True)
    for axes, word in ((anc_axes, "ANC"), (plt_axes, "platelet")):
        for mark in data.recoveries:
            if mark.label.startswith(word):
                axes.annotate(mark.label, (mark.day, 0.05), xycoords=axes.get_xaxis_transform(), xytext=(4, 0),
                              textcoords="offset points", color="#1a7a1a", fontweight="bold",
                              bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    _events(events, data)
    events.set_xlim(data.first_day - 1, data.last_day + 1)
    events.xaxis.set_major_locator(MultipleLocator(7 if data.last_day - data.first_day <= 140 else 14))
    events.xaxis.set_major_formatter(FuncFormatter(lambda x, _: day_label(round(x))))
    events.set_xlabel(data.axis_label)
    return figure


def _counts(axes: Axes, points: tuple[Point, ...], threshold: float, label: str, colour: str, *, log: bool) -> None:
    if points:
        axes.plot([p.day for p in points], [p.value for p in points], marker="o", ms=3.5, color=colour, lw=1.4)
    axes.axhline(threshold, color=colour, ls=":", lw=1.2)
    axes.annotate(f"recovery threshold {threshold:g}", (1.0, threshold), xycoords=axes.get_yaxis_transform(),
                  xytext=(-4, 3), textcoords="offset points", color=colour, fontsize=8, ha="right")
    if log:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        values = [p.value for p in points if p.value > 0] + [threshold]
        axes.set_yscale("log")
        axes.set_ylim(min(values) / 2, max(values) * 2)  # room above and below the threshold line
        axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_ylabel(label)
    axes.grid(axis="x", color="#cccccc", lw=0.5)


def _events(axes: Axes, data: TimelineData) -> None:
    """One row per kind of event; labels beside the markers, transfusions as ticks only."""
    for row, name in enumerate(_EVENT_ROWS):
        marks: tuple[Mark, ...] = getattr(data, name)
        y = len(_EVENT_ROWS) - 1 - row
        axes.scatter([m.day for m in marks], [y] * len(marks), marker="|" if name == "transfusions" else "D",
                     s=60 if name == "transfusions" else 28, color=_ROW_COLOURS[name])
        if name == "transfusions":
            continue
        middle = (data.first_day + data.last_day) / 2
        for n, mark in enumerate(marks):
            left = mark.day > middle  # labels run towards the middle, so none leaves the picture
            axes.annotate(mark.label, (mark.day, y), xytext=(-5 if left else 5, 6 if n % 2 == 0 else -11),
                          textcoords="offset points", fontsize=7.5, color=_ROW_COLOURS[name],
                          ha="right" if left else "left")
    axes.set_yticks(range(len(_EVENT_ROWS)), [_ROW_NAMES[n] for n in reversed(_EVENT_ROWS)])
    axes.set_ylim(-0.7, len(_EVENT_ROWS) - 0.3)
    axes.grid(axis="x", color="#cccccc", lw=0.5)


def _page(data: TimelineData, svg: str) -> str:
    """A self-contained page: the SVG inline (no XML prolog) and a short legend as text."""
    body = svg[svg.index("<svg"):]
    facts = [
        ("Day axis", data.axis_label),
        ("ANC recovery threshold", f"{data.anc_threshold:g} x10^9/L"),
        ("platelet recovery threshold", f"{data.platelet_threshold:g} x10^9/L"),
        *(("recovery", m.label) for m in data.recoveries),
        *(("infusion", f"{day_label(m.day)} {m.label}") for m in data.infusions),
        ("transfusions", str(len(data.transfusions))),
        *(("GVHD", f"{day_label(m.day)} {m.label}") for m in data.gvhd),
        *(("VOD", f"{day_label(m.day)} {m.label}") for m in data.vod),
        *(("milestone", f"{day_label(m.day)} {m.label}") for m in data.milestones),
    ]
    items = "\n".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in facts)
    phases = ", ".join(f"{p.phase.value} ({day_label(p.first)}..{day_label(p.last)})" for p in data.phases)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(data.title)}</title>
<style>body{{font-family:sans-serif;margin:1em}} svg{{max-width:100%;height:auto}}</style></head>
<body>
<h1 style="font-size:1.1em">{html.escape(data.title)}</h1>
{body}
<h2 style="font-size:1em">Legend</h2>
<p>Shaded bands are phases: {html.escape(phases)}. Dotted lines are the policy's recovery thresholds; dashed
green lines mark the recovery dates the policy's rules give. The lower strip shows infusions, transfusions,
acute GVHD grades (MAGIC), VOD assessments and the milestones open on {data.as_of.isoformat()}.</p>
<ul>
{items}
</ul>
</body></html>
"""
