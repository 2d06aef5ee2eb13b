"""Every rule case of tests/rules/cases runs through interpret() and agrees with RULES.md."""

from __future__ import annotations

import pytest

from b12labs import interpret
from b12labs.rules import CATALOGUE

from ._cases import CASES_DIR, Case, check, load_cases, outcome_from_interpretation

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_case(case: Case) -> None:
    kwargs = {"profile": case.profile} if case.profile else {}
    result = interpret(case.panel, case.context or None, **kwargs, **case.kwargs)
    problems = check(case, outcome_from_interpretation(result))
    assert not problems, f"{case.file}: {case.name}: " + "; ".join(problems)


def test_every_code_has_cases_and_only_catalogue_codes_do() -> None:
    codes = {r.code for r in CATALOGUE}
    files = {p.stem for p in CASES_DIR.glob("*.yaml")}
    assert files == codes, f"missing case files: {sorted(codes - files)}; stray: {sorted(files - codes)}"
    for code in codes:
        mine = [c for c in CASES if c.code == code]
        assert any(c.fires for c in mine), f"{code}: no case where it fires"
        assert any(not c.fires for c in mine), f"{code}: no case where it does not fire"


def test_catalogue_is_exactly_the_codes_of_rules_md_in_its_order() -> None:
    import re

    from tests._paths import spec_text

    spec = spec_text()
    section = spec.split("## 5. Rules", 1)[1].split("## 6.", 1)[0]
    # a rule is defined where a bullet starts with its code, or its code is followed by its
    # severity (`HOLOTC_DEFICIENT` [warning], `HOLOTC_INDETERMINATE` [info; ...])
    found = re.findall(r"^- `([A-Z][A-Z0-9_]{3,})`|`([A-Z][A-Z0-9_]{3,})` \[", section, re.M)
    spec_codes = list(dict.fromkeys(a or b for a, b in found))
    assert len(spec_codes) == len(set(spec_codes)) == 47  # v2: 41 of v1 and six new (§9)
    # §8 (results over time) adds its own codes after §5's, in its order
    serial = spec.split("## 8. ", 1)[1].split("## 9.", 1)[0]
    found = re.findall(r"^- `([A-Z][A-Z0-9_]{3,})`|`([A-Z][A-Z0-9_]{3,})` \[", serial, re.M)
    serial_codes = [c for c in dict.fromkeys(a or b for a, b in found) if c not in spec_codes]
    assert len(serial_codes) == 10
    assert [r.code for r in CATALOGUE] == spec_codes + serial_codes


def test_every_evidence_pair_names_the_analyte_of_its_limit() -> None:
    # interpret() keys a panel's limits by name: a band limit is shown in the unit of the
    # analyte it belongs to, so a pair citing another analyte's limit would show a wrong unit
    from b12labs.profiles import THRESHOLDS

    for r in CATALOGUE:
        for analyte, limit in r.evidence:
            if limit is None:
                continue
            kind = "hb" if limit == "hb_anaemia" else THRESHOLDS[limit].kind
            assert analyte == kind, f"{r.code}: evidence ({analyte}, {limit}) cites a {kind} limit"


def test_outputs_are_exactly_what_validation_would_build() -> None:
    # interpret() builds its outputs without re-validating them (models.trusted_constructor):
    # every output of every case must survive validation unchanged, types included (a 133
    # where 133.0 belongs would serialise differently), with the same fields set
    from b12labs.models import Interpretation

    for case in CASES:
        kwargs = {"profile": case.profile} if case.profile else {}
        result = interpret(case.panel, case.context or None, **kwargs, **case.kwargs)
        again = Interpretation.model_validate(result.model_dump(exclude={"codes"}))
        assert again.model_dump_json() == result.model_dump_json(), case.id
        assert again == result, case.id
        for finding in result.findings:
            assert type(finding.severity).__name__ == "Severity"
            for ev in finding.evidence:
                for name in ("value", "threshold"):
                    x = getattr(ev, name)
                    assert x is None or type(x) is float, f"{case.id}: {name} {x!r}"
        assert all(type(v) is float for v in result.values.values()), case.id
        assert result.model_fields_set >= {"status", "findings", "values", "comment"}
