"""One input grammar: every spelling reads the same through interpret(), score_frame and the
FHIR reader (the same canonical value, or the same error code)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from b12labs import interpret
from b12labs.batch import score_frame
from b12labs.errors import B12LabsError
from b12labs.fhir import interpret_fhir

MISSING = "missing"
IMPLAUSIBLE = "implausible"
SAME = "same"  # a value: all front-ends agree (not written out here)
# an equivocal IF antibody: measured (not ordered again), no canonical value, no error
EQUIVOCAL = "equivocal"
#: a deficient B12 beside a qualitative result: the IF antibody is ordered only when not measured
_DEFICIENT_B12 = "120 pg/mL"
_ORDER_IF = "31444-3"

# (analyte, spelling, decimal, expected): a canonical value, MISSING, IMPLAUSIBLE, SAME,
# EQUIVOCAL or an error code
TABLE: list[tuple[str, str, str, object]] = [
    # numbers
    ("b12", "250 pmol/L", ".", 250.0),
    ("b12", "250pmol/L", ".", 250.0),
    ("b12", "  250 pmol/L  ", ".", 250.0),
    ("b12", "250. pmol/L", ".", 250.0),
    ("b12", ".5e3 pmol/L", ".", 500.0),
    ("b12", "2.5e2 pmol/L", ".", 250.0),
    ("b12", "+250 pmol/L", ".", 250.0),
    ("b12", "339 pg/mL", ".", SAME),
    ("b12", "250 ng/L", ".", SAME),
    ("hb", "12.5 g/dL", ".", 125.0),
    # decimal commas
    ("b12", "250,5 pmol/L", ",", 250.5),
    ("b12", "250.5 pmol/L", ",", 250.5),
    ("b12", "250,5 pmol/L", ".", "value-decimal-comma"),
    ("b12", "1.000,5 pmol/L", ",", "value-decimal-comma"),
    ("b12", "1,000,000 pmol/L", ".", "value-decimal-comma"),
    ("b12", "1,000,5 pmol/L", ",", "value-decimal-comma"),
    # censored values
    ("b12", "<50 pmol/L", ".", 50.0),
    ("b12", "<= 50 pmol/L", ".", 50.0),
    ("b12", "≤50 pmol/L", ".", 50.0),
    ("b12", "=<50 pmol/L", ".", 50.0),
    ("b12", "> 1000 pmol/L", ".", 1000.0),
    ("b12", "≥1000 pmol/L", ".", 1000.0),
    ("b12", "=>1000 pmol/L", ".", 1000.0),
    ("b12", "~50 pmol/L", ".", "comparator-invalid"),
    ("b12", "<<50 pmol/L", ".", "comparator-invalid"),
    ("b12", "!50 pmol/L", ".", "comparator-invalid"),
    ("b12", "<>50 pmol/L", ".", "comparator-invalid"),
    # qualitative
    ("if_antibody", "positive", ".", 1.0),
    ("if_antibody", "POS", ".", 1.0),
    ("if_antibody", "Detected", ".", 1.0),
    ("if_antibody", "+", ".", 1.0),
    ("if_antibody", "reactive", ".", 1.0),
    ("if_antibody", "negative", ".", 0.0),
    ("if_antibody", " neg ", ".", 0.0),
    ("if_antibody", "-", ".", 0.0),
    ("if_antibody", "not detected", ".", 0.0),
    ("if_antibody", "Non-Reactive", ".", 0.0),
    ("if_antibody", "equivocal", ".", EQUIVOCAL),
    ("if_antibody", "Borderline", ".", EQUIVOCAL),
    ("if_antibody", " INDETERMINATE ", ".", EQUIVOCAL),
    ("if_antibody", "inconclusive", ".", EQUIVOCAL),
    ("if_antibody", "12 U/mL", ".", "qualitative-needs-cutoff"),
    ("if_antibody", "<1.5", ".", "qualitative-needs-cutoff"),
    ("if_antibody", "maybe", ".", "qualitative-unknown"),
    ("if_antibody", "٣", ".", "value-non-ascii-digits"),
    # missing markers
    ("b12", "NA", ".", MISSING),
    ("b12", "na", ".", MISSING),
    ("b12", "N/A", ".", MISSING),
    ("b12", "n.a.", ".", MISSING),
    ("b12", "null", ".", MISSING),
    ("b12", "None", ".", MISSING),
    ("b12", "NaN", ".", MISSING),
    ("b12", "#N/A", ".", MISSING),
    ("b12", "  NA  ", ".", MISSING),
    ("if_antibody", "NA", ".", MISSING),
    # bad values
    ("b12", "abc", ".", "value-unparseable"),
    ("b12", "1.2.3 pmol/L", ".", "value-unparseable"),
    ("b12", "inf pmol/L", ".", "value-unparseable"),
    ("b12", "-5 pmol/L", ".", "value-negative"),
    ("b12", "1e400 pmol/L", ".", "value-not-finite"),
    ("b12", "1e20 pmol/L", ".", "value-too-large"),
    ("b12", "1" * 400 + " pmol/L", ".", "value-too-large"),
    ("b12", "1" * 400, ".", "value-too-large"),
    ("b12", "٢٥٠ pmol/L", ".", "value-non-ascii-digits"),
    ("b12", "２５０ pmol/L", ".", "value-non-ascii-digits"),
    ("b12", "250", ".", "unit-missing"),
    ("hb", "12.5", ".", "unit-missing"),
    ("b12", "250 furlong", ".", "unit-unknown"),
    ("b12", "250 %", ".", "unit-wrong-dimension"),
    ("b12", "9000000 pmol/L", ".", IMPLAUSIBLE),
]

_IDS = [f"{a}={s[:20]!r}{'(dec,)' if d == ',' else ''}" for a, s, d, _ in TABLE]


def _via_interpret(analyte: str, text: str, decimal: str) -> object:
    try:
        result = interpret({analyte: text}, decimal=decimal)
    except B12LabsError as exc:
        return exc.code
    if analyte in result.values:
        return result.values[analyte]
    if "VALUE_IMPLAUSIBLE" in result.codes:
        return IMPLAUSIBLE
    if analyte == "if_antibody":
        beside = interpret({analyte: text, "b12": _DEFICIENT_B12}, decimal=decimal)
        if all(a.loinc != _ORDER_IF for f in beside.findings for a in f.actions):
            return EQUIVOCAL  # measured without a value
    return MISSING


def _via_fhir(analyte: str, text: str) -> object:
    loinc = {"b12": "2132-9", "hb": "718-7", "if_antibody": "31444-3"}[analyte]
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2026-01-05T08:00:00Z",
        "valueString": text,
    }
    result = interpret_fhir([obs])
    if analyte in result.values:
        return result.values[analyte]
    if "VALUE_IMPLAUSIBLE" in result.codes:
        return IMPLAUSIBLE
    if analyte == "if_antibody" and not result.ignored:
        b12 = {
            **obs,
            "id": "o2",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]},
            "valueString": _DEFICIENT_B12,
        }
        beside = interpret_fhir([obs, b12])
        if all(a.loinc != _ORDER_IF for f in beside.findings for a in f.actions):
            return EQUIVOCAL  # measured without a value
    codes = [i.code for i in result.ignored if i.code]
    if codes == ["value-missing"]:
        return MISSING
    return codes[0] if codes else ("ignored", [i.reason for i in result.ignored])


def _batch() -> dict[tuple[str, str, str], object]:
    """Every spelling of the table in one frame per (analyte, decimal), plus a row with a
    unit so the column is not refused as a whole."""
    out: dict[tuple[str, str, str], object] = {}
    groups: dict[tuple[str, str], list[str]] = {}
    for analyte, text, decimal, _ in TABLE:
        groups.setdefault((analyte, decimal), []).append(text)
    anchor = {"b12": "250 pmol/L", "hb": "12 g/dL", "if_antibody": "positive"}
    column = {"b12": "b12_pmol_l", "hb": "hb_g_l", "if_antibody": "if_antibody_positive"}
    for (analyte, decimal), texts in groups.items():
        columns = {analyte: [*texts, anchor[analyte]]}
        if analyte == "if_antibody":  # shows whether the IF antibody counts as measured
            columns["b12"] = [_DEFICIENT_B12] * (len(texts) + 1)
        frame = pd.DataFrame(columns, dtype="string")
        scored = score_frame(frame, decimal=decimal)
        value_col = column[analyte]
        assert len(scored) == len(texts) + 1
        for i, text in enumerate(texts):
            code = str(scored["b12labs_error_code"].iloc[i])
            value = scored[value_col].iloc[i]
            if code == "value-implausible":
                got: object = IMPLAUSIBLE
            elif code:
                got = code
            elif value is None or (isinstance(value, float) and math.isnan(value)):
                ordered = _ORDER_IF in str(scored["b12labs_actions"].iloc[i])
                got = EQUIVOCAL if analyte == "if_antibody" and not ordered else MISSING
            else:
                got = float(value)
            out[(analyte, text, decimal)] = got
    return out


@pytest.fixture(scope="module")
def batch() -> dict[tuple[str, str, str], object]:
    return _batch()


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    return a == b


@pytest.mark.parametrize(("analyte", "text", "decimal", "expected"), TABLE, ids=_IDS)
def test_one_spelling_one_reading(
    analyte: str, text: str, decimal: str, expected: object, batch: dict[tuple[str, str, str], object]
) -> None:
    scalar = _via_interpret(analyte, text, decimal)
    if expected is SAME:
        assert isinstance(scalar, float), scalar
    else:
        assert _same(scalar, expected), (scalar, expected)
    assert _same(batch[(analyte, text, decimal)], scalar), ("score_frame", batch[(analyte, text, decimal)], scalar)
    if decimal == ".":  # FHIR has no decimal-comma option: its strings are read with "."
        assert _same(_via_fhir(analyte, text), scalar), ("fhir", _via_fhir(analyte, text), scalar)


def test_every_error_code_of_the_table_is_registered() -> None:
    from b12labs.errors import ERROR_CODES

    for _, _, _, expected in TABLE:
        if isinstance(expected, str) and expected not in (MISSING, IMPLAUSIBLE, SAME, EQUIVOCAL):
            assert expected in ERROR_CODES
