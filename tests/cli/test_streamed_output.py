"""json and csv output is written row by row as the rows are made (`hsct pathway list` at
10,000 pathways), and reads exactly as the whole document written at once would."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from workflow.cli.output import Format, Row, emit, write_json, write_json_list

KEYS = ("id", "note", "n")


@pytest.mark.parametrize(
    "items",
    [[], [{}], [{"a": 1}], [{"id": "x", "note": 'two\nlines "quoted" é', "n": None}, {"nested": [1, {"b": []}]}]],
)
def test_the_streamed_list_is_the_document_written_at_once(
    items: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    streamed, whole = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", streamed)
    write_json_list(iter(items))
    monkeypatch.setattr("sys.stdout", whole)
    write_json(items)
    assert streamed.getvalue() == whole.getvalue()
    assert json.loads(streamed.getvalue()) == items


@pytest.mark.parametrize("fmt", [Format.JSON, Format.CSV])
def test_each_row_is_written_before_the_next_is_made(fmt: Format, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    seen: list[bool] = []

    def rows() -> Iterator[Row]:
        for n in range(3):
            yield {"id": f"row-{n}", "note": "x", "n": n}
            seen.append(f"row-{n}" in out.getvalue())

    emit(rows(), KEYS, fmt)
    assert seen == [True, True, True]
