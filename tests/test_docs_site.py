"""The docs site (mkdocs.yml) covers the guides: every page of docs/ is in the navigation, every
navigation entry exists, and the API reference pages name modules that import. CI builds the
site with `mkdocs build --strict` (.ci/run); these checks say what is wrong without a build."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _nav_pages(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def _config() -> dict[str, Any]:
    # mkdocs.yml holds a python/name tag (the mermaid fence): read it without constructing that.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)
    config: dict[str, Any] = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    return config


def test_every_page_of_docs_is_in_the_navigation_and_back() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    nav = _nav_pages(_config()["nav"])
    assert len(nav) == len(set(nav))
    assert set(nav) - pages == set(), "mkdocs.yml names pages that do not exist"
    assert pages - set(nav) == set(), "add these docs/ pages to the nav of mkdocs.yml"


def test_the_api_reference_names_modules_that_import() -> None:
    references = list((DOCS / "reference").glob("*.md"))
    assert references
    modules = {
        m
        for page in references
        for m in re.findall(r"^::: ([\w.]+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    }
    assert {"workflow.service", "states.payloads", "states.policy", "states.errors"} <= modules
    for name in modules:
        importlib.import_module(name)


def test_the_docs_extra_has_what_the_site_needs() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    docs = " ".join(project["optional-dependencies"]["docs"])
    for package in ("mkdocs", "mkdocs-material", "mkdocstrings[python]"):
        assert package in docs
    assert any("docs" in dep for dep in project["optional-dependencies"]["dev"] if dep.startswith("hsct-pathway["))
    assert _config()["theme"]["name"] == "material"
