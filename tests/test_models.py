"""Typed inputs and outputs (issue 2): accepted forms, and every kind of bad input is a clear error."""

from __future__ import annotations

import json
import math

import pydantic
import pytest

import b12labs
from b12labs import (
    B12LabsError,
    InvalidValueError,
    LabPanel,
    Measurement,
    PatientContext,
    UnitError,
    UnknownAnalyteError,
    VocabularyError,
    interpret,
    normalize,
)
from b12labs.models import parse_measurement


@pytest.mark.parametrize(
    ("raw", "value", "unit", "comparator"),
    [
        ("180 pg/mL", 180.0, "pg/mL", None),
        ("<50 pmol/L", 50.0, "pmol/L", "<"),
        (">= 2000 ng/L", 2000.0, "ng/L", ">="),
        ("≤ 100 pg/mL", 100.0, "pg/mL", "<="),
        ("  250pg/mL ", 250.0, "pg/mL", None),
        ("250. pg/mL", 250.0, "pg/mL", None),
        ("<250. pg/mL", 250.0, "pg/mL", "<"),
        ({"value": 180, "unit": "pg/mL", "comparator": "<"}, 180.0, "pg/mL", "<"),
        ({"value": "<180", "unit": "pg/mL"}, 180.0, "pg/mL", "<"),
        (Measurement(value=180, unit="pg/mL"), 180.0, "pg/mL", None),
    ],
)
def test_measurement_forms(raw: object, value: float, unit: str, comparator: str | None) -> None:
    m = parse_measurement("b12", raw)
    assert (m.value, m.unit, m.comparator) == (value, unit, comparator)


def test_decimal_comma_only_when_asked() -> None:
    assert parse_measurement("folate", "3,5 ng/mL", decimal=",").value == 3.5
    with pytest.raises(InvalidValueError, match="decimal comma"):
        parse_measurement("folate", "3,5 ng/mL")
    assert normalize({"folate": "3,5 ng/mL"}, decimal=",")["folate"] == pytest.approx(7.93, abs=0.01)


def test_single_unit_analytes_take_numbers_without_unit() -> None:
    assert normalize({"mcv": 101, "rdw": "15", "tsat": 18, "egfr": "45", "holotc": 40}) == {
        "mcv": 101.0, "rdw": 15.0, "tsat": 18.0, "egfr": 45.0, "holotc": 40.0,
    }


def test_normalize_published_example() -> None:
    assert normalize({"b12": "180 ng/L"})["b12"] == pytest.approx(132.8, abs=0.05)
    assert normalize({"b12": "<50 pmol/L"})["b12"] == 50.0  # a censored value as its bound
    assert normalize({"if_antibody": "positive"}) == {"if_antibody": 1.0}


@pytest.mark.parametrize(
    ("panel", "error", "text"),
    [
        ({"b12": "180"}, UnitError, "without a unit"),
        ({"b12": 180}, UnitError, "1.36x"),
        ({"b12": "250 fL"}, UnitError, "wrong dimension"),
        ({"b12": "250 furlongs"}, UnitError, "unknown unit"),
        ({"b12": "hemolysed"}, InvalidValueError, "not a number"),
        ({"b12": "QNS"}, InvalidValueError, "not a number"),
        ({"b12": {"value": float("nan"), "unit": "pg/mL"}}, InvalidValueError, "finite"),
        ({"b12": "nan pg/mL"}, InvalidValueError, "not a number"),
        ({"b12": math.inf}, InvalidValueError, "finite"),
        ({"b12": "-5 pg/mL"}, InvalidValueError, "negative"),
        ({"b12": "<<50 pmol/L"}, InvalidValueError, "malformed comparator"),
        ({"b12": "=~50 pmol/L"}, InvalidValueError, "malformed comparator"),
        ({"b12": {"value": 180, "unit": "pg/mL", "comparator": "!="}}, InvalidValueError, "comparator"),
        ({"vitamin_d": "50 nmol/L"}, UnknownAnalyteError, "vitamin_d"),
        ({"if_antibody": "weak"}, InvalidValueError, "positive, negative"),
        ({"mma": "0.4"}, UnitError, "mma"),
        ({"hb": "13"}, UnitError, "g/dL"),
    ],
)
def test_bad_input_is_a_clear_error(panel: dict[str, object], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text) as info:
        interpret(panel)
    exc = info.value
    assert isinstance(exc, B12LabsError) and isinstance(exc, ValueError)
    assert exc.analyte is not None  # type: ignore[attr-defined]
    assert exc.reason  # type: ignore[attr-defined]


def test_unit_error_says_what_is_accepted() -> None:
    with pytest.raises(UnitError) as info:
        interpret({"b12": "180"})
    assert info.value.analyte == "b12"
    assert info.value.reported == "180"
    assert "pg/mL" in str(info.value) and "pmol/L" in str(info.value)


@pytest.mark.parametrize(
    ("context", "field", "listed"),
    [
        ({"symptoms": ["headache"]}, "symptoms", "paraesthesia"),
        ({"conditions": ["diabetes"]}, "conditions", "rheumatoid_arthritis"),
    ],
)
def test_unknown_vocabulary_lists_the_vocabulary(context: dict[str, object], field: str, listed: str) -> None:
    with pytest.raises(VocabularyError) as info:
        interpret({"b12": "300 pmol/L"}, context)
    assert info.value.analyte == field
    assert listed in str(info.value)
    assert listed in info.value.vocabulary


def test_context_synonyms_booleans_and_medications() -> None:
    ctx = PatientContext.parse({
        "sex": "F", "pregnant": "yes", "nitrous_oxide_exposure": "0",
        "symptoms": "paresthesia; tingling", "conditions": ["Celiac disease", "anemia"] [:1],
        "medications": ["Metformin 500 mg", "aspirin"],
    })
    assert ctx.sex == "female" and ctx.pregnant is True and ctx.nitrous_oxide_exposure is False
    assert ctx.symptoms == ("paraesthesia",)
    assert ctx.conditions == ("coeliac_disease",)
    assert ctx.medication_classes == {"b12_lowering"}
    assert ctx.unrecognised_medications == ("aspirin",)
    with pytest.raises(InvalidValueError, match="yes/no"):
        PatientContext.parse({"pregnant": "maybe"})


def test_lab_panel_model_validation_names_unknown_keys() -> None:
    with pytest.raises(pydantic.ValidationError, match="vitamin_d"):
        LabPanel.model_validate({"vitamin_d": "50 nmol/L"})
    panel = LabPanel.model_validate({"b12": "180 pg/mL"})
    assert panel.b12 is not None and panel.b12.unit == "pg/mL"
    decimal = LabPanel.model_validate({"folate": "3,5 ng/mL"}, context={"decimal": ","})
    assert decimal.folate is not None and decimal.folate.value == 3.5


def test_outputs_are_immutable_and_json_serialisable() -> None:
    result = interpret({"b12": "250 pg/mL", "mma": "0.62 umol/L"}, {"age": 50})
    with pytest.raises(pydantic.ValidationError):
        result.status = b12labs.Status.unlikely  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        result.findings[0].code = "X"  # type: ignore[misc]
    data = json.loads(result.model_dump_json())
    assert data["status"] == "probable"
    assert data["codes"] == list(result.codes)
    again = b12labs.Interpretation.model_validate({k: v for k, v in data.items() if k != "codes"})
    assert again.findings == result.findings
    assert result.profile_id == "nice-ng239-2024" and result.library_version == b12labs.__version__


def test_evidence_names_values_thresholds_and_sources() -> None:
    result = interpret({"b12": "250 pg/mL", "mma": {"value": 0.35, "unit": "umol/L", "ref_high": 0.3}})
    mma = next(f for f in result.findings if f.code == "MMA_ELEVATED")
    ev = mma.evidence[0]
    assert ev.analyte == "mma" and ev.reported == "0.35 umol/L"
    assert ev.threshold == 0.3 and ev.lab_interval is True
    b12 = next(f for f in result.findings if f.code == "B12_INDETERMINATE")
    band = b12.evidence[0]
    assert (band.value, band.unit, band.threshold, band.threshold_unit) == (250.0, "ng/L", 180.0, "ng/L")
    assert band.threshold_source and "NG239" in band.threshold_source
    assert all(f.sources for f in result.findings)


def test_comment_is_short_decision_support() -> None:
    result = interpret(
        {"b12": "120 pg/mL", "folate": "2 ng/mL", "hb": "6.5 g/dL", "mcv": "125 fL"},
        {"symptoms": ["paraesthesia", "ataxia"], "conditions": ["rheumatoid_arthritis"], "nitrous_oxide_exposure": True},
    )
    assert len(result.comment) <= 400
    assert "diagnos" not in result.comment.lower() or "decision support" in result.comment.lower()


@pytest.mark.parametrize(
    "raw",
    [
        {"value": 180, "unit": "pg/mL"},
        {"value": 180.5, "unit": "ng/L"},
        {"value": 0, "unit": "pmol/L"},
        {"value": 133.0, "unit": " pmol/L "},
        {"value": -1.0, "unit": "pg/mL"},
        {"value": math.nan, "unit": "pg/mL"},
        {"value": math.inf, "unit": "pg/mL"},
        {"value": 180.0, "unit": "fL"},
        {"value": 180.0, "unit": "furlongs"},
        {"value": 180.0, "unit": ""},
        {"value": True, "unit": "pg/mL"},
        {"value": "180", "unit": "pg/mL"},
    ],
)
def test_value_unit_mapping_fast_path_matches_the_general_path(raw: dict[str, object]) -> None:
    # parse_measurement() reads {"value": number, "unit": str} without a dict copy and a
    # validated model; an OrderedDict takes the general path: both must agree exactly
    from collections import OrderedDict

    def outcome(r: object) -> object:
        try:
            m = parse_measurement("b12", r)
        except Exception as exc:  # the error is the outcome compared
            return (type(exc), str(exc))
        return (m.model_dump_json(), m.model_fields_set, type(m.value))

    assert outcome(raw) == outcome(OrderedDict(raw))


def test_a_remembered_context_is_the_one_validation_gives() -> None:
    """PatientContext.parse remembers a plain context dict it validated; what it returns is
    what a fresh validation gives, exact types stay apart, and bad input raises every time."""
    from b12labs.errors import InvalidValueError
    from b12labs.models import PatientContext, _context_key

    given = {"age": 55, "sex": "F", "medications": ["metformin 500 mg"], "symptoms": "fatigue"}
    first = PatientContext.parse(given)
    again = PatientContext.parse(dict(given))
    assert again == first == PatientContext.model_validate(given)
    # True is not 1, -0.0 is not 0.0, a list is not a tuple: each is its own input
    assert _context_key({"age": True}) != _context_key({"age": 1})
    assert _context_key({"age": -0.0}) != _context_key({"age": 0.0})
    assert _context_key({"symptoms": ["fatigue"]}) != _context_key({"symptoms": ("fatigue",)})
    # dates are checked against the clock, other types are not plain: always validated afresh
    assert _context_key({"collected_at": "2024-01-02"}) is None
    assert _context_key({"medications": [1]}) is None
    for _ in range(2):
        with pytest.raises(InvalidValueError):
            PatientContext.parse({"age": 200})
        with pytest.raises(InvalidValueError):
            PatientContext.parse({"age": True})
