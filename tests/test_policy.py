"""The policy: defaults with their sources, program files (TOML, YAML), and its version on entries.

Defaults and sources are those of HSCT_REFERENCE.md §0-§2 and §7; PATHWAY.md "Policy" asks for
one validated object per program whose version (declared, or a content hash) is stored on every
log entry, so an auditor can tell which rules judged each step.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from states.errors import PolicyError
from states.policy import Policy
from states.vocabulary import GraftSource, Phase, Role
from tests.helpers_core import COL, COORD, PRO, QM, WALKS, fire, open_walk, play, refused, steps_before, t
from tests.walks import d, run_walk
from workflow.clock import ManualClock
from workflow.policy_files import load_policy
from workflow.service import PathwayService

# (default, source id) of each threshold, read from HSCT_REFERENCE.md.
REFERENCE_DEFAULTS: dict[str, tuple[Any, str]] = {
    "min_cd34_autologous_x10e6_per_kg": (2.0, "F:RUSSELL-2013"),
    "min_tnc_marrow_x10e8_per_kg": (2.0, "F:BM-HARVEST"),
    "idm_window_days": (30, "F:CFR-1271.80"),
    "fresh_product_max_hours": (48, "F:NMDP-48H"),
    "cord_single_min_tnc_x10e7_per_kg": (3.0, "F:DEHN-2019"),
    "cord_double_min_cd34_x10e5_per_kg": (1.0, "F:CORD-SEL"),
    "cord_dose_rule": ("tnc_and_cd34", "F:DEHN-2019"),
    "cord_avoid_hla_c_mismatch": (True, "F:CORD-SEL"),
    "cord_dsa_rule": ("refuse_positive", "F:CORD-SEL"),
    "vod_baltimore_hepatic": ("hepatomegaly", "F:JONES-1987"),
    "vod_seattle_hepatic": ("hepatomegaly_or_ruq_pain", "F:MCDONALD-1993"),
    "cord_single_min_cd34_x10e5_per_kg": (1.5, "F:CORD-SEL"),
    "cord_double_min_tnc_x10e7_per_kg": (1.5, "F:CORD-SEL"),
    "cord_max_hla_mismatches": (2, "F:CORD-SEL"),
    "anc_recovery_x10e9_per_l": (0.5, "F:CIBMTR-ANC"),
    "recovery_consecutive_values": (3, "F:CIBMTR-ANC"),
    "platelet_recovery_x10e9_per_l": (20, "F:CIBMTR-PLT"),
    "platelet_transfusion_free_days": (7, "F:CIBMTR-PLT"),
    "primary_graft_failure_day": (
        {GraftSource.PBSC: 30, GraftSource.BONE_MARROW: 30, GraftSource.CORD_BLOOD: 42},
        "F:ASTCT",
    ),
    "secondary_graft_failure_days": (3, "F:CIBMTR-SUBSEQ"),
    "day100_window": ((85, 115), "F:CIBMTR-CONTACT"),
    "day100_evidence_from_day": (85, "F:CIBMTR-CONTACT"),
}
SOURCE = re.compile(r"^(F:[A-Z0-9.-]+|S: \S.*|PATHWAY\.md \S.*)")
# Not thresholds: the declared version, and the role table (PATHWAY.md Roles).
NOT_THRESHOLDS = {"version", "roles"}

OVERRIDES_TOML = """
timezone = "Europe/Oslo"
min_cd34_autologous_x10e6_per_kg = 5.0
idm_window_days = 28
cryopreserve_before_conditioning = true
cryopreserved_graft_sources = ["bone_marrow"]
day100_window = [80, 120]

[primary_graft_failure_day]
pbsc = 28
bone_marrow = 28
cord_blood = 42

[roles]
hold = ["transplant_physician", "transplant_coordinator", "system"]
"""
OVERRIDES_YAML = """
timezone: Europe/Oslo
min_cd34_autologous_x10e6_per_kg: 5.0
idm_window_days: 28
cryopreserve_before_conditioning: true
cryopreserved_graft_sources: [bone_marrow]
day100_window: [80, 120]
primary_graft_failure_day: {pbsc: 28, bone_marrow: 28, cord_blood: 42}
roles:
  hold: [transplant_physician, transplant_coordinator, system]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults and their sources ------------------------------------------------------------


def test_every_threshold_names_its_source() -> None:
    for name, field in Policy.model_fields.items():
        if name in NOT_THRESHOLDS:
            continue
        extra = field.json_schema_extra
        source = extra.get("source") if isinstance(extra, dict) else None
        assert isinstance(source, str), name
        assert SOURCE.match(source), name


@pytest.mark.parametrize("name", sorted(REFERENCE_DEFAULTS))
def test_defaults_are_the_reference_values(name: str) -> None:
    value, source = REFERENCE_DEFAULTS[name]
    assert getattr(Policy(), name) == value
    extra = Policy.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    assert source in str(extra["source"])


# --- program files ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text"), [("program.toml", OVERRIDES_TOML), ("program.yaml", OVERRIDES_YAML)])
def test_a_program_file_overrides_the_defaults(tmp_path: Path, name: str, text: str) -> None:
    policy = load_policy(_write(tmp_path, name, text))
    assert policy.timezone == "Europe/Oslo"
    assert policy.min_cd34_autologous_x10e6_per_kg == 5.0
    assert policy.idm_window_days == 28
    assert policy.cryopreserve_before_conditioning is True
    assert policy.cryopreserved_graft_sources == frozenset({GraftSource.BONE_MARROW})
    assert policy.day100_window == (80, 120)
    assert policy.primary_graft_failure_day[GraftSource.PBSC] == 28
    assert policy.roles["hold"] == frozenset({Role.TRANSPLANT_PHYSICIAN, Role.TRANSPLANT_COORDINATOR, Role.SYSTEM})
    # Everything not named keeps its default.
    assert policy.fresh_product_max_hours == 48
    assert policy.roles["infuse"] == Policy().roles["infuse"]


def test_toml_and_yaml_with_the_same_content_are_the_same_policy(tmp_path: Path) -> None:
    toml = load_policy(_write(tmp_path, "p.toml", OVERRIDES_TOML))
    yaml = load_policy(_write(tmp_path, "p.yml", OVERRIDES_YAML))
    assert toml == yaml
    assert toml.version_id == yaml.version_id != Policy().version_id


@pytest.mark.parametrize(
    ("name", "text", "named"),
    [
        ("p.toml", "min_cd34_autologous = 2.0\n", "min_cd34_autologous"),
        ("p.yaml", "idm_window: 30\n", "idm_window"),
        ("p.toml", "[roles]\nteleport = ['system']\n", "teleport"),
        ("p.toml", "[primary_graft_failure_day]\npbsc = 30\nbone_marrow = 30\nperipheral = 30\n", "peripheral"),
        ("p.toml", "idm_window_days = -5\n", "idm_window_days"),
        ("p.toml", "min_cd34_autologous_x10e6_per_kg = 'two'\n", "min_cd34_autologous_x10e6_per_kg"),
        ("p.yaml", "timezone: Mars/Olympus\n", "timezone"),
        ("p.toml", "day100_window = [115, 85]\n", "day100_window"),
        ("p.yaml", "roles: {hold: [janitor]}\n", "roles.hold"),
        ("p.yaml", "primary_graft_failure_day: {pbsc: 30, bone_marrow: 30}\n", "primary_graft_failure_day"),
    ],
)
def test_unknown_keys_and_bad_values_name_the_key(tmp_path: Path, name: str, text: str, named: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(_write(tmp_path, name, text))
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("p.toml", "min_cd34_autologous_x10e6_per_kg = \n"),
        ("p.yaml", "idm_window_days: [30\n"),
        ("p.yaml", "- just\n- a list\n"),
        ("p.json", "{}"),
    ],
    ids=["toml-syntax", "yaml-syntax", "yaml-not-a-mapping", "unknown-suffix"],
)
def test_an_unreadable_policy_file_is_a_policy_error(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(PolicyError):
        load_policy(_write(tmp_path, name, text))


def test_a_missing_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        load_policy(tmp_path / "absent.toml")


# --- the version ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_cd34_autologous_x10e6_per_kg", 2.5),
        ("idm_window_days", 29),
        ("fresh_product_max_hours", 72),
        ("primary_graft_failure_day", {"pbsc": 28, "bone_marrow": 30, "cord_blood": 42}),
        ("roles", {"start_conditioning": ["transplant_physician", "transplant_coordinator"]}),
    ],
)
def test_the_content_hash_changes_when_a_rule_changes(name: str, value: Any) -> None:
    changed = Policy.model_validate({name: value})
    assert changed.version_id != Policy().version_id
    assert Policy.model_validate({name: value}).version_id == changed.version_id
    assert Policy().version_id.startswith("sha256:")
    assert Policy.model_validate({name: value, "version": "prog-2026.2"}).version_id == "prog-2026.2"


def test_the_content_hash_is_the_same_in_every_process(tmp_path: Path) -> None:
    """An auditor recomputing the version elsewhere must get the same value: no dependence on
    the interpreter's string-hash seed (frozensets of roles have no stable order)."""
    path = _write(tmp_path, "p.toml", OVERRIDES_TOML)
    code = (
        "import sys; from states.policy import Policy; from workflow.policy_files import load_policy; "
        "print(Policy().version_id, load_policy(sys.argv[1]).version_id)"
    )
    root = Path(__file__).resolve().parents[1]
    seen = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True, check=True, cwd=root
        )
        seen.add(out.stdout.strip())
    assert len(seen) == 1, seen


def test_the_policy_version_is_stored_on_every_entry(service: PathwayService, clock: ManualClock) -> None:
    pathway_id = run_walk(service, clock, WALKS["autologous"](), until=Phase.FOLLOW_UP)
    declared = PathwayService(service.engine, clock=clock, policy=Policy(version="oslo-2026.1"))
    # A running pathway keeps its policy until it adopts the new one (docs/versioning.md).
    adopt = {"version": "oslo-2026.1", "reason": "programme policy 2026.1"}
    declared.fire(pathway_id, "adopt_policy", adopt, actor=QM, at=clock.now())
    refused(
        declared,
        clock,
        pathway_id,
        clock.now(),
        COORD,
        "start_conditioning",
        {
            "regimen": {"name": "x", "intensity": "MAC", "plan": [{"day": -1, "drug": "x", "dose": "1 mg"}]},
            "planned_day0": "2026-12-01",
        },
    )
    play(declared, clock, pathway_id, WALKS["autologous"]().steps[-1:])
    history = declared.history(pathway_id)
    versions = [e.policy_version for e in history]
    cut = len(versions) - 2
    assert set(versions[:cut]) == {Policy().version_id}
    assert versions[cut:] == ["oslo-2026.1", "oslo-2026.1"]
    assert history[-1].trigger == "complete_day100"


# --- a different policy, a different outcome ---------------------------------------------------


@pytest.mark.parametrize(
    ("minimum", "doses", "passes"),
    [
        (6.0, (3.4, 2.9), True),  # S01 myeloma: 6.3 meets the myeloma optimum >= 6 [F:RUSSELL-2013]
        (5.0, (1.2, 1.0), False),  # S02 DLBCL: 2.2 misses the NHL optimum >= 5 [F:RUSSELL-2013]
        (2.0, (1.2, 1.0), True),  # S02 against the minimum >= 2 (the default)
    ],
)
def test_the_cd34_target_of_the_program_decides_collection(
    service: PathwayService, clock: ManualClock, minimum: float, doses: tuple[float, ...], passes: bool
) -> None:
    program = PathwayService(service.engine, clock=clock, policy=Policy(min_cd34_autologous_x10e6_per_kg=minimum))
    walk = WALKS["autologous"]()
    pathway_id = open_walk(program, clock, walk)
    play(program, clock, pathway_id, steps_before(walk, "record_collection"))
    for n, dose in enumerate(doses):
        product = f"DIN-{n}"
        fire(
            program,
            clock,
            pathway_id,
            t(d("2026-01-16"), 9 + n),
            COL,
            "record_collection",
            {"product_id": product, "cd34_x10e6_per_kg": dose},
        )
        fire(
            program,
            clock,
            pathway_id,
            t(d("2026-01-16"), 12 + n),
            PRO,
            "cryopreserve_product",
            {"product_id": product, "bags": 1, "location": "tank-1"},
        )
    at = t(d("2026-01-17"))
    if passes:
        assert fire(program, clock, pathway_id, at, COORD, "complete_collection").phase is Phase.READY_FOR_CONDITIONING
    else:
        assert refused(program, clock, pathway_id, at, COORD, "complete_collection") == ("insufficient_cd34_dose",)
        assert program.history(pathway_id)[-1].policy_version == program.policy.version_id


def test_a_72_hour_shelf_life_policy_accepts_a_49_hour_old_fresh_product(
    service: PathwayService, clock: ManualClock
) -> None:
    """Default 48 h [F:NMDP-48H] refuses it (tests/test_guards.py); 72 h is common [F:BST-72H]."""
    program = PathwayService(service.engine, clock=clock, policy=Policy(fresh_product_max_hours=72))
    walk = WALKS["matched_unrelated"]()
    pathway_id = open_walk(program, clock, walk)
    play(program, clock, pathway_id, steps_before(walk, "record_collection"))
    fire(
        program,
        clock,
        pathway_id,
        t(d("2026-04-06"), 10),
        COL,
        "record_collection",
        {"product_id": "DIN-D1", "cd34_x10e6_per_kg": 5.2},
    )
    infuse = next(s for s in walk.steps if s[2] == "infuse")
    assert fire(program, clock, pathway_id, *infuse).phase is Phase.AWAITING_ENGRAFTMENT
