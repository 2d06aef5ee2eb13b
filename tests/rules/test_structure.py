"""The catalogue's structure: rules own their branches and words, limits are chosen in one
place, statuses are an enum, codes are never reused, groups are data."""

from __future__ import annotations

import re
from typing import Any

import pytest

from b12labs import interpret
from b12labs._engine import LIMIT_CHOICES, STATUS_NAMES, StatusCode
from b12labs.models import Status
from b12labs.rules import CATALOGUE, _registry
from b12labs.rules._registry import LIMIT_KEYS, branch, rule
from b12labs.vocabulary import CONDITION_GROUPS, CONDITIONS, NEUROLOGICAL_SYMPTOMS, SYMPTOMS
from tests.rules._cases import load_cases

CASES = load_cases()
BY_CODE = {r.code: r for r in CATALOGUE}


def _all_findings() -> list[tuple[Any, Any]]:
    out = []
    for case in CASES:
        result = interpret(
            case.panel, case.context or None, profile=case.profile or "nice-ng239-2024", **case.kwargs
        )
        out.extend((case, f) for f in result.findings)
    return out


FINDINGS = _all_findings()


def test_status_codes_are_the_public_statuses_in_order() -> None:
    assert set(STATUS_NAMES) == {s.value for s in Status}
    assert [s.name.lower() for s in StatusCode] == list(STATUS_NAMES)


@pytest.mark.parametrize("r", [r for r in CATALOGUE if r.branches], ids=lambda r: r.code)
def test_every_branch_is_reached_by_a_rule_case(r: Any) -> None:
    """Each branch of a rule is exercised: its message is what a case actually sees."""
    seen = {f.branch for _, f in FINDINGS if f.code == r.code}
    missing = [b.name for b in r.branches if b.name not in seen]
    assert not missing, f"{r.code}: no rule case reaches branches {missing}"


def test_a_rule_without_branches_reports_none() -> None:
    for _, f in FINDINGS:
        if not BY_CODE[f.code].branches:
            assert f.branch is None, f.code


# Messages state the finding, not the rule (docs/clinical-logic.md §1): no template left
# unfilled, no comparison with a value that was not measured, no list of other branches.
_NOT_MEASURED_COMPARED = re.compile(
    r"not measured (is|are|below|above|was)\b|not measured\) (is|below|above)"
)


@pytest.mark.parametrize("code", sorted({f.code for _, f in FINDINGS}))
def test_messages_state_only_what_holds(code: str) -> None:
    for case, f in FINDINGS:
        if f.code != code:
            continue
        where = f"{case.id}: {f.message}"
        # an unfilled field; a unit as the lab wrote it (mL/min/{1.73_m2}) is not one
        assert not re.search(r"\{[A-Za-z_]\w*\}", f.message), where
        assert not _NOT_MEASURED_COMPARED.search(f.message), where
        assert ", or below " not in f.message and " or homocysteine not measured" not in f.message, where
        assert "()" not in f.message and "(none)" not in f.message, where


def test_neck_pain_is_never_called_a_neurological_symptom() -> None:
    result = interpret(
        {"b12": "150 pg/mL"},
        {"symptoms": ["neck_pain", "back_pain", "paraesthesia"]},
    )
    urgent = next(f for f in result.findings if f.code == "NEURO_URGENT")
    assert "Neurological symptoms (paraesthesia)" in urgent.message
    assert "neck" not in urgent.message and "back pain" not in urgent.message


def test_iron_deficiency_names_only_the_branch_that_fired() -> None:
    plain = next(f for f in interpret({"ferritin": "9 ug/L"}).findings if f.code == "IRON_DEFICIENCY")
    assert plain.branch == "ferritin_low"
    assert "TSAT" not in plain.message and "100" not in plain.message
    assert [e.threshold_name for e in plain.evidence] == ["ferritin_low"]
    inflamed = next(
        f
        for f in interpret(
            {"ferritin": "60 ug/L", "tsat": "12 %"}, {"conditions": ["rheumatoid_arthritis"]}
        ).findings
        if f.code == "IRON_DEFICIENCY"
    )
    assert inflamed.branch == "inflammation"
    assert "rheumatoid arthritis" in inflamed.message and "below 30" not in inflamed.message
    assert "CRP" not in inflamed.message  # not measured, so not named


def test_renal_caveat_names_only_the_evidence_of_renal_impairment_present() -> None:
    f = next(
        f
        for f in interpret({"mma": "0.6 umol/L", "egfr": "45 mL/min/1.73m2"}).findings
        if f.code == "MMA_RENAL_CAVEAT"
    )
    assert "eGFR 45" in f.message and "creatinine" not in f.message
    f = next(
        f
        for f in interpret({"mma": "0.6 umol/L"}, {"conditions": ["ckd"]}).findings
        if f.code == "MMA_RENAL_CAVEAT"
    )
    assert "chronic kidney disease recorded" in f.message and "eGFR" not in f.message


def test_anaemia_names_its_grade_not_the_list_of_grades() -> None:
    for hb, grade in (("115 g/L", "mild"), ("95 g/L", "moderate"), ("70 g/L", "severe")):
        f = next(
            f for f in interpret({"hb": hb}, {"sex": "female"}).findings if f.code == "ANAEMIA"
        )
        assert f.branch == grade and f"{grade} anaemia" in f.message
        others = {"mild", "moderate", "severe"} - {grade}
        assert not any(f"{o} anaemia" in f.message for o in others)


def test_one_table_decides_which_limit_applies() -> None:
    # the docs' list of keys a limit stands for is the engine's own choice table
    for name, choice in LIMIT_CHOICES.items():
        assert set(choice.keys) <= set(LIMIT_KEYS[name])
    older = interpret({"mma": "0.5 umol/L"}, {"age": 70})
    younger = interpret({"mma": "0.5 umol/L"}, {"age": 40})
    assert "MMA_ELEVATED" in younger.codes and "MMA_ELEVATED" in older.codes
    ev_old = next(f for f in older.findings if f.code == "MMA_ELEVATED").evidence[0]
    ev_young = next(f for f in younger.findings if f.code == "MMA_ELEVATED").evidence[0]
    assert (ev_old.threshold_name, ev_old.threshold) == ("mma_elevated_older", 0.46)
    assert (ev_young.threshold_name, ev_young.threshold) == ("mma_elevated", 0.40)
    pregnant = interpret({"hb": "9.5 g/dL"}, {"pregnant": True, "sex": "female"})
    ev = next(f for f in pregnant.findings if f.code == "ANAEMIA").evidence[0]
    assert ev.threshold_name == "hb_moderate_pregnant"


def test_every_rule_records_the_version_it_appeared_in() -> None:
    assert all(r.since for r in CATALOGUE)


def test_a_retired_code_is_never_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_registry.RETIRED, "OLD_CODE", ("2", "split into two rules"))
    with pytest.raises(ValueError, match="retired in v2"):
        rule(
            "OLD_CODE",
            area="quality",
            severity=_registry.Severity.info,
            title="t",
            message="m",
            sources=("NG239",),
            why="w",
        )(lambda f, xp: False)
    assert all(r.code != "OLD_CODE" for r in CATALOGUE)


def test_branch_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="branch names repeat"):
        rule(
            "NEW_TEST_CODE",
            area="quality",
            severity=_registry.Severity.info,
            title="t",
            message="m",
            sources=("NG239",),
            why="w",
            branches=(branch("a", lambda f, xp: True, "x"), branch("a", lambda f, xp: True, "y")),
        )(lambda f, xp: False)
    assert all(r.code != "NEW_TEST_CODE" for r in CATALOGUE)


def test_condition_groups_are_vocabulary_terms() -> None:
    assert {"inflammatory", "malabsorption", "diet"} <= set(CONDITION_GROUPS)
    for members in CONDITION_GROUPS.values():
        assert set(members) <= set(CONDITIONS)
    assert set(NEUROLOGICAL_SYMPTOMS) < set(SYMPTOMS)
    assert "neck_pain" not in NEUROLOGICAL_SYMPTOMS


def test_a_group_naming_an_unknown_term_is_refused() -> None:
    from b12labs.vocabulary import _groups

    with pytest.raises(ValueError, match="not vocabulary terms"):
        _groups({"inflammatory": ["rheumatoid_arthritis", "gout"]}, CONDITIONS)


def test_each_area_derives_its_facts_next_to_its_rules() -> None:
    """derive() builds only the measures; each area's facts are derived in that area's module,
    once, in the fixed order rules.DERIVE (an area reads only the facts of areas before it)."""
    from b12labs._engine import SCALAR, RawInputs, derive
    from b12labs.profiles import load_profile
    from b12labs.rules import DERIVE, DERIVE_ORDER
    from b12labs.rules._registry import DERIVERS, derives

    assert set(DERIVERS) == set(DERIVE_ORDER)
    for area, fn in zip(DERIVE_ORDER, DERIVE, strict=True):
        assert fn.__module__ == f"b12labs.rules.{area}"
        assert fn.__name__ == f"derive_{area}"
    with pytest.raises(ValueError, match="derived twice"):
        derives("iron")(lambda f, raw, xp: None)
    # the measures alone: no area's feature is set until its deriver runs
    bare = derive(RawInputs(values={"b12": 100.0}), load_profile("nice-ng239-2024"), SCALAR, ())
    assert not hasattr(bare, "b12_deficient") and bare.b12.present
    # each prefix of the order runs: no area reads a later area's facts
    for n in range(1, len(DERIVE) + 1):
        derive(
            RawInputs(values={"b12": 100.0, "mma": 0.5}),
            load_profile("nice-ng239-2024"),
            SCALAR,
            DERIVE[:n],
        )
