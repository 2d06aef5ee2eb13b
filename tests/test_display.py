"""Numbers in messages (docs/clinical-logic.md §1 principle 7): reported values as the lab
wrote them, thresholds as published in the lab's unit, converted values to 3 significant
figures, the published figure in brackets; evidence keeps the exact numbers."""

from __future__ import annotations

import pytest

from b12labs import interpret
from b12labs._display import published, sig3, unit_shown, writes_micro_as_u


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (376.281, "376"),
        (6.8, "6.80"),
        (7.16268, "7.16"),
        (1234.5, "1230"),
        (0.0451, "0.0451"),
        (9.996, "10.0"),
        (99.96, "100"),
        (0.4, "0.400"),
        (0.0, "0"),
    ],
)
def test_three_significant_figures(x: float, text: str) -> None:
    assert sig3(x) == text


@pytest.mark.parametrize(
    ("x", "text"), [(133, "133"), (0.4, "0.40"), (0.378, "0.378"), (14.5, "14.5"), (5, "5")]
)
def test_published_figures(x: float, text: str) -> None:
    assert published(x) == text


def test_units_as_printed() -> None:
    assert unit_shown("umol/L") == "µmol/L"
    assert unit_shown("umol/L", ascii_micro=True) == "umol/L"
    assert unit_shown("mL/min/{1.73_m2}") == "mL/min/1.73m2"
    assert unit_shown("10*3/uL") == "10*3/µL"
    assert writes_micro_as_u("ug/dL") and writes_micro_as_u("10*3/uL")
    assert not writes_micro_as_u("nmol/L") and not writes_micro_as_u("µmol/L")


def _message(panel: dict[str, object], code: str, context: dict[str, object] | None = None) -> str:
    result = interpret(panel, context)
    return next(f.message for f in result.findings if f.code == code)


def test_value_and_threshold_in_the_lab_unit_with_the_published_figure() -> None:
    msg = _message({"b12": "250 pg/mL", "mma": "180 nmol/L"}, "B12_INDETERMINATE")
    assert "MMA 180 nmol/L" in msg and "400 nmol/L (0.40 µmol/L)" in msg
    assert "0.4 umol/L" not in msg


def test_bands_in_the_lab_unit_as_published() -> None:
    assert "(180 pg/mL to 350 pg/mL)" in _message({"b12": "250 pg/mL"}, "B12_INDETERMINATE")
    assert "(133 pmol/L to 258 pmol/L)" in _message({"b12": "150 pmol/L"}, "B12_INDETERMINATE")
    assert "below 180 ng/L" in _message({"b12": "150 ng/L"}, "B12_DEFICIENT")


def test_the_lab_spelling_is_kept() -> None:
    msg = _message({"b12": "510 pg/mL", "mma": "0.62 umol/L"}, "MMA_ELEVATED", {"age": 50})
    assert msg.startswith("MMA 0.62 umol/L is above 0.40 umol/L")


def test_converted_thresholds_to_three_figures() -> None:
    assert "below 11.0 g/dL (110 g/L)" in _message({"hb": "9.8 g/dL"}, "ANAEMIA")
    assert "below 3.00 ng/mL (6.8 nmol/L)" in _message({"folate": "2 ng/mL"}, "FOLATE_LOW")


def test_derived_tsat_names_its_inputs_with_canonical_values() -> None:
    panel = {"ferritin": "80 ug/L", "iron": "40 ug/dL", "tibc": "400 ug/dL", "crp": "20 mg/L"}
    result = interpret(panel, {"conditions": ["rheumatoid_arthritis"]})
    msg = next(f.message for f in result.findings if f.code == "IRON_DEFICIENCY")
    assert "10.0 % (derived from iron 40 ug/dL (7.16 umol/L) and TIBC 400 ug/dL (71.6 umol/L))" in msg
    # evidence keeps the exact number
    tsat = next(e for f in result.findings for e in f.evidence if e.analyte == "tsat")
    assert tsat.value == pytest.approx(10.0) and tsat.unit == "%"


def test_a_lab_limit_is_shown_as_the_lab_wrote_it() -> None:
    panel = {"mma": {"value": 0.5, "unit": "umol/L", "ref_high": 0.45}}
    msg = _message(panel, "MMA_ELEVATED", {"age": 50})
    assert "0.45 umol/L (lab reference interval)" in msg


def test_evidence_keeps_exact_numbers() -> None:
    result = interpret({"folate": "2 ng/mL", "mma": "180 nmol/L", "b12": "250 pg/mL"})
    ev = {e.analyte: e for f in result.findings for e in f.evidence}
    assert ev["folate"].value == pytest.approx(2 * 2.2655, rel=1e-3)
    assert ev["folate"].value != round(ev["folate"].value, 2)
    assert ev["mma"].value == pytest.approx(0.18) and ev["mma"].threshold == pytest.approx(0.4)
    assert ev["folate"].reported == "2 ng/mL"


def test_suspect_values_are_separated_by_semicolons() -> None:
    # each suspect value carries its own ", beyond <limit>": the values are separated by "; "
    result = interpret({"mma": "400 umol/L", "homocysteine": "900 umol/L"})
    (message,) = [f.message for f in result.findings if f.code == "VALUE_SUSPECT_UNIT"]
    assert "(MMA 400 umol/L, beyond 50 umol/L; homocysteine 900 umol/L, beyond 500 umol/L)" in message
