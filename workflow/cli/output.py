"""`--format table|json|csv` for the listing commands, one implementation for all of them.

A table on a terminal is rich's (boxes, colour unless NO_COLOR is set). Piped, it is plain
text: a header line and one line per row, columns padded with spaces, never folded to the
terminal width and never coloured, so `grep`, `sort` and `awk` see the same lines whatever
COLUMNS says. json is one document (a list of objects whose keys are the column keys, in
column order); csv is a header row of those keys and one row per object.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

Cell = str | int | float | bool | None
Row = Mapping[str, Cell]

EMPTY = "-"
"""A plain table's empty cell: every line keeps the same number of fields."""


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        help="table (plain text when piped), json (one document: a list of objects) or csv (with a header row).",
    ),
]


def console() -> Console:
    """stdout as rich sees it: a terminal (or FORCE_COLOR) gets boxes, anything else plain text."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def emit(
    rows: Iterable[Row],
    keys: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    footer: str | None = None,
    styles: Mapping[str, str] | None = None,
) -> None:
    """Write `rows` (only the `keys` columns, in that order) to stdout in `fmt`. The title and
    footer belong to the table; json and csv carry the rows alone. `styles` maps a cell's text
    to a rich style, for a terminal (NO_COLOR keeps the colours off). json and csv are written
    row by row as `rows` yields them; a table needs every row first, for its column widths."""
    if fmt is Format.JSON:
        write_json_list({key: row.get(key) for key in keys} for row in rows)
    elif fmt is Format.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(keys)
        writer.writerows([_text(row.get(key)) for key in keys] for row in rows)
    else:
        rows = list(rows)
        out = None if _no_terminal() else console()
        if out is not None and out.is_terminal:
            out.print(_rich_table(rows, keys, title, styles or {}))
            if footer is not None:
                out.print(footer, markup=False)
        else:
            lines = [*plain_table(rows, keys), *([] if footer is None else [footer])]
            sys.stdout.write("".join(line + "\n" for line in lines))


def _no_terminal() -> bool:
    """True where rich would see no terminal, told without importing rich (a twentieth of a
    second of `hsct pathway list`): stdout is not a TTY and neither FORCE_COLOR nor TTY_COMPATIBLE
    asks for one. Anything else is rich's to decide (`console`)."""
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # a closed stream: no terminal either, as rich says
        return True


def write_json(document: object) -> None:
    """One JSON document on stdout (keys in the order given, non-ASCII kept)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def write_json_list(items: Iterable[object]) -> None:
    """What `write_json(list(items))` writes, one item at a time (no list, no whole-document
    string): each item is dumped alone and indented one level, as inside the list."""
    write = sys.stdout.write
    separator = "[\n  "
    for item in items:
        write(separator + json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n  "))
        separator = ",\n  "
    write("[]\n" if separator == "[\n  " else "\n]\n")


def plain_table(rows: Sequence[Row], keys: Sequence[str]) -> list[str]:
    """Header and rows as space-padded lines (trailing blanks stripped), no wrapping."""
    cells = [list(keys), *([_text(row.get(key)) or EMPTY for key in keys] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(keys))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells]


def _rich_table(rows: Sequence[Row], keys: Sequence[str], title: str | None, styles: Mapping[str, str]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for key in keys:
        table.add_column(key, overflow="fold")
    for row in rows:
        cells = [_text(row.get(key)) for key in keys]
        table.add_row(*(Text(cell, style=styles.get(cell, "")) for cell in cells))
    return table


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
