"""Scenario results for machines: one JSON document, or JUnit XML for CI systems.

JUnit: one <testsuite> per scenario, one <testcase> per step and per pathway's final
assertions; a step whose expectation did not hold is a <failure> whose message says why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

from workflow.scenario.runner import ScenarioResult

__all__ = ["junit_xml", "results_document", "results_json", "summary_line"]


def summary_line(results: Sequence[ScenarioResult], not_run: int = 0) -> str:
    """The closing line of a run: `N passed, N failed` (scenarios), and `N not run` after a
    fail-fast stop left files out."""
    passed = sum(1 for r in results if r.passed)
    line = f"{passed} passed, {len(results) - passed} failed"
    return f"{line}, {not_run} not run (stopped at the first failure)" if not_run else line


def results_document(results: Sequence[ScenarioResult], not_run: int = 0) -> dict[str, Any]:
    passed = sum(1 for r in results if r.passed)
    return {
        "scenarios": [r.to_dict() for r in results],
        "passed": passed,
        "failed": len(results) - passed,
        "not_run": not_run,
    }


def results_json(results: Sequence[ScenarioResult], not_run: int = 0) -> str:
    return json.dumps(results_document(results, not_run), indent=2, ensure_ascii=False)


def junit_xml(results: Sequence[ScenarioResult]) -> str:
    suites = ET.Element("testsuites", name="hsct scenarios")
    total = failures = 0
    for result in results:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=result.title,
            tests=str(len(result.rows)),
            failures=str(len(result.failures)),
            errors="0",
            time=f"{result.seconds:.3f}",
        )
        if result.file:
            suite.set("file", result.file)
        share = result.seconds / len(result.rows) if result.rows else 0.0
        for row in result.rows:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=result.file or result.title,
                name=row.name,
                time=f"{share:.3f}",
            )
            if not row.held:
                failure = ET.SubElement(case, "failure", message=row.message or "expectation did not hold")
                failure.text = row.message
        total += len(result.rows)
        failures += len(result.failures)
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
