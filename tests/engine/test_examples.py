"""The worked examples of the specification (§7) hold, read from the specification itself."""

from __future__ import annotations

import re
from typing import Any

import pytest

from b12labs import interpret
from tests._paths import spec_text

EXAMPLES: list[tuple[dict[str, Any], dict[str, Any], str, list[str], list[str]]] = [
    ({"b12": "150 pg/mL"}, {}, "deficient", ["B12_DEFICIENT"], []),
    ({"b12": "250 pg/mL"}, {}, "indeterminate", ["B12_INDETERMINATE"], ["order 13964-2 MMA"]),
    ({"b12": "250 pg/mL", "mma": "0.62 umol/L"}, {"age": 50}, "probable", ["B12_INDETERMINATE", "MMA_ELEVATED"], []),
    ({"b12": "250 pg/mL", "mma": "250 nmol/L"}, {}, "unlikely", ["B12_INDETERMINATE"], []),
    ({"mcv": "106 fL"}, {"medications": ["methotrexate"]}, "not_assessed", ["MACROCYTOSIS_ON_METHOTREXATE"], ["order 2132-9 B12"]),
    ({"b12": "300 pmol/L", "ferritin": "9 ug/L", "mcv": "88 fL"}, {"symptoms": ["paraesthesia"]}, "indeterminate",
     ["IRON_DEFICIENCY_MAY_MASK_B12", "NEURO_SYMPTOMS_NORMAL_B12"], []),
]


def test_the_table_matches_the_specification() -> None:
    spec = spec_text()
    table = spec.split("## 7. Examples", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| input")]
    assert len(rows) == len(EXAMPLES)
    for row, (_, _, status, codes, _) in zip(rows, EXAMPLES, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == status
        for code in codes:
            assert code in re.findall(r"[A-Z0-9_]{5,}", cells[2])


@pytest.mark.parametrize(("panel", "context", "status", "codes", "actions"), EXAMPLES)
def test_rules_md_examples(panel: dict[str, Any], context: dict[str, Any], status: str, codes: list[str],
                           actions: list[str]) -> None:
    from b12labs.rules import ActionSpec

    result = interpret(panel, context)
    assert result.status.value == status
    for code in codes:
        assert code in result.codes
    labels = {ActionSpec(a.kind, a.test, a.loinc).label() for f in result.findings for a in f.actions}
    for a in actions:
        assert a in labels
