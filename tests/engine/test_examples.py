"""The worked examples of the specification (§7, v2) hold, read from the specification itself.

Each row of the table is paired with the panel and context it describes; the status, the codes
it names, the codes it excludes ("not X") and the severities and actions it names are checked
against ``interpret()``. The table's own text is compared with the pairing, so an edit to the
specification fails here until the example list is updated.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from b12labs import interpret
from tests._paths import spec_text

# (panel, context, status, {code: severity or None}, actions that must be suggested)
EXAMPLES: list[tuple[dict[str, Any], dict[str, Any], str, dict[str, str | None], list[str]]] = [
    ({"b12": "150 pg/mL"}, {}, "deficient", {"B12_DEFICIENT": None}, []),
    ({"b12": "250 pg/mL"}, {}, "indeterminate", {"B12_INDETERMINATE": None}, ["order 13964-2 MMA"]),
    ({"b12": "250 pg/mL", "mma": "0.62 umol/L"}, {"age": 50}, "probable",
     {"B12_INDETERMINATE": None, "MMA_ELEVATED": None}, []),
    ({"b12": "250 pg/mL", "mma": "250 nmol/L"}, {}, "unlikely", {"B12_INDETERMINATE": None}, []),
    ({"mcv": "106 fL"}, {"medications": ["methotrexate"]}, "not_assessed",
     {"MACROCYTOSIS_ON_METHOTREXATE": None}, ["order 2132-9 B12"]),
    ({"b12": "300 pmol/L", "ferritin": "9 ug/L", "mcv": "88 fL"}, {"symptoms": ["paraesthesia"]},
     "indeterminate", {"IRON_DEFICIENCY_MAY_MASK_B12": None, "NEURO_SYMPTOMS_NORMAL_B12": None}, []),
    ({"b12": "1500 ng/L"}, {"days_since_b12_injection": 30}, "uninterpretable",
     {"RECENT_B12_TREATMENT": None}, []),
    ({"b12": "420 ng/L", "if_antibody": "positive", "mcv": "115 fL", "hb": "98 g/L"},
     {"symptoms": ["paraesthesia"]}, "probable",
     {"IF_ANTIBODY_POSITIVE": "critical", "NEURO_URGENT": None, "POSSIBLE_ASSAY_INTERFERENCE": None}, []),
    ({"b12": "200 ng/L"}, {"pregnant": True, "medications": ["folic acid 400 micrograms"]},
     "indeterminate", {"FOLIC_ACID_CAUTION": "warning", "PREGNANCY_CAVEAT": "warning"},
     ["order 72160-5 holoTC"]),
    ({"b12": "300 ng/L", "mma": "0.25 umol/L", "folate": "4 nmol/L"}, {}, "unlikely",
     {"FOLATE_LOW": None}, []),
    ({"b12": "200 pmol/L", "mma": "1.2 umol/L", "egfr": "40 mL/min/1.73m2"}, {"age": 70}, "probable",
     {"MMA_ELEVATED": None, "MMA_MARKEDLY_ELEVATED": None, "MMA_RENAL_CAVEAT": None}, []),
    ({"b12": "110 pmol/L", "holotc": "90 pmol/L"}, {}, "indeterminate",
     {"B12_HOLOTC_DISCORDANT": None}, ["order 13964-2 MMA"]),
    ({"b12": "260 ng/L", "mma": "0.20 umol/L"}, {"symptoms": ["paraesthesia"]}, "unlikely",
     {"B12_INDETERMINATE": None}, []),
    ({"mma": "8 umol/L"}, {"age": 3}, "probable", {"PAEDIATRIC_MMA": None, "AGE_OUT_OF_SCOPE": None}, []),
    ({"creatinine": "300 umol/L", "mma": "0.6 umol/L"}, {"age": 70, "sex": "female"}, "indeterminate",
     {"MMA_RENAL_CAVEAT": None}, []),
    ({"creatinine": "150 umol/L", "mma": "0.9 umol/L"}, {"age": 70, "sex": "male"}, "probable",
     {"MMA_RENAL_CAVEAT": None, "MMA_MARKEDLY_ELEVATED": None}, []),
    ({"b12": "420 ng/L", "mcv": "115 fL", "hb": "98 g/L"}, {"age": 60}, "indeterminate",
     {"POSSIBLE_ASSAY_INTERFERENCE": None}, ["order 31444-3 intrinsic-factor antibody"]),
    ({"homocysteine": "40 umol/L"}, {"nitrous_oxide_exposure": True, "symptoms": ["paraesthesia"]},
     "probable", {"HCY_ELEVATED": None, "NITROUS_OXIDE": "critical", "NEURO_URGENT": None}, []),
    ({"b12": "500 ng/L"}, {"medications": ["biotin 10 mg"]}, "indeterminate",
     {"BIOTIN_INTERFERENCE": None}, []),
]

_CODE = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)+")


def _rows() -> list[list[str]]:
    table = spec_text().split("## 7. Examples", 1)[1].split("\n## ", 1)[0]
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| input")
    ]


def _named(cell: str) -> tuple[set[str], set[str]]:
    """(codes the cell says are included, codes it says are not)."""
    included, excluded = set(), set()
    for part in cell.split(";"):
        part = part.strip()
        if part.startswith("not "):
            excluded |= set(_CODE.findall(part))
        else:
            included |= set(_CODE.findall(part))
    return included, excluded


def test_the_table_matches_the_specification() -> None:
    rows = _rows()
    assert len(rows) == len(EXAMPLES)
    for row, (_, _, status, codes, _) in zip(rows, EXAMPLES, strict=True):
        assert row[1] == status, row
        included, _ = _named(row[2])
        assert included == set(codes), row
        for code, severity in codes.items():
            if severity is not None:
                assert re.search(rf"{code} \({severity}", row[2]), row


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_rules_md_examples(index: int) -> None:
    from b12labs.rules import ActionSpec

    panel, context, status, codes, actions = EXAMPLES[index]
    result = interpret(panel, context)
    assert result.status.value == status
    by_code = {f.code: f for f in result.findings}
    for code, severity in codes.items():
        assert code in by_code, code
        if severity is not None:
            assert by_code[code].severity.value == severity, code
    rows = _rows() if index < len(_rows()) else []
    if rows:
        _, excluded = _named(rows[index][2])
        for code in excluded:
            assert code not in by_code, f"{code} must not fire"
    labels = {ActionSpec(a.kind, a.test, a.loinc).label() for f in result.findings for a in f.actions}
    for a in actions:
        assert a in labels, (a, sorted(labels))


def test_calculated_egfr_examples_say_about_what_the_specification_says() -> None:
    for panel, context, egfr in (
        ({"creatinine": "300 umol/L", "mma": "0.6 umol/L"}, {"age": 70, "sex": "female"}, 14),
        ({"creatinine": "150 umol/L", "mma": "0.9 umol/L"}, {"age": 70, "sex": "male"}, 43),
    ):
        result = interpret(panel, context)
        renal = next(f for f in result.findings if f.code == "MMA_RENAL_CAVEAT")
        ev = next(e for e in renal.evidence if e.analyte == "egfr")
        assert round(ev.value) == egfr
