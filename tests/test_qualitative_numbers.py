"""A number for the IF antibody is read only against the laboratory's cut-off, never as negative.

A positive intrinsic-factor antibody makes a normal B12 untrustworthy, so reading ``1`` or
``25 U/mL`` as "negative" would reassure wrongly. With ``ref_high`` (the cut-off) a number is
positive above it and negative at or below it; without one it is an error in every front-end.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from b12labs import interpret
from b12labs.errors import InvalidValueError

B12 = {"b12": "400 pg/mL"}


@pytest.mark.parametrize("raw", [1, 2, 0, 25.0, "25", "25 U/mL", {"value": 25, "unit": "U/mL"},
                                 {"value": "25", "unit": "U/mL"}, {"value": 1.5}])
def test_a_number_without_a_cutoff_is_an_error_that_says_so(raw: Any) -> None:
    with pytest.raises(InvalidValueError, match="cut-off") as info:
        interpret({**B12, "if_antibody": raw})
    assert info.value.analyte == "if_antibody"
    assert "ref_high" in (info.value.accepted or "")


@pytest.mark.parametrize(("raw", "positive"), [
    ({"value": 25, "unit": "U/mL", "ref_high": 6}, True),
    ({"value": 6.01, "unit": "U/mL", "ref_high": 6}, True),
    ({"value": 6, "unit": "U/mL", "ref_high": 6}, False),       # at the cut-off: not above it
    ({"value": 3, "unit": "U/mL", "ref_high": "6"}, False),
    ({"value": ">10", "unit": "U/mL", "ref_high": 6}, True),
    ({"value": ">6", "unit": "U/mL", "ref_high": 6}, True),
    ({"value": "<5", "unit": "U/mL", "ref_high": 6}, False),
    ({"value": "<=6", "unit": "U/mL", "ref_high": 6}, False),
])
def test_a_number_with_the_cutoff_decides(raw: dict[str, Any], positive: bool) -> None:
    result = interpret({**B12, "if_antibody": raw})
    assert ("IF_ANTIBODY_POSITIVE" in result.codes) is positive
    # RULES v2 §6 step 4: a positive antibody makes the status probable whatever the B12; a
    # negative one changes nothing
    assert result.status.value == ("probable" if positive else "unlikely")


@pytest.mark.parametrize("value", ["<10", ">=2", ">5"])
def test_a_censored_number_on_both_sides_of_the_cutoff_is_an_error(value: str) -> None:
    with pytest.raises(InvalidValueError, match="both sides"):
        interpret({**B12, "if_antibody": {"value": value, "unit": "U/mL", "ref_high": 6}})


@pytest.mark.parametrize("word", ["positive", "POS", "detected", "negative", "not detected"])
def test_words_still_read(word: str) -> None:
    result = interpret({**B12, "if_antibody": word})
    assert ("IF_ANTIBODY_POSITIVE" in result.codes) is (word.lower() in ("positive", "pos", "detected"))


def test_batch_never_reads_a_number_as_negative() -> None:
    from b12labs.batch import score_frame

    df = pd.DataFrame({"b12": ["400 pg/mL"] * 3, "if_antibody": ["25", "2", "positive"]})
    out = score_frame(df)
    errors = out["b12labs_error"].astype(str).tolist()
    assert "cut-off" in errors[0] and "cut-off" in errors[1] and errors[2] in ("", "nan", "<NA>")
    assert "IF_ANTIBODY_POSITIVE" in str(out["b12labs_codes"].iloc[2])


def _fhir_if(value: float, high: float | None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": "if1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "31444-3"}]},
        "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-01-05",
        "valueQuantity": {"value": value, "unit": "U/mL", "system": "http://unitsofmeasure.org", "code": "U/mL"},
    }
    if high is not None:
        obs["referenceRange"] = [{"high": {"value": high, "unit": "U/mL", "system": "http://unitsofmeasure.org",
                                           "code": "U/mL"}}]
    return obs


def _fhir_b12() -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "b1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-01-05",
            "valueQuantity": {"value": 400, "unit": "pg/mL", "system": "http://unitsofmeasure.org", "code": "pg/mL"}}


def test_fhir_reads_a_quantity_against_its_reference_range() -> None:
    pytest.importorskip("fhir.resources")
    from b12labs.fhir import interpret_fhir

    assert "IF_ANTIBODY_POSITIVE" in interpret_fhir([_fhir_b12(), _fhir_if(25, 6)]).codes
    assert "IF_ANTIBODY_POSITIVE" not in interpret_fhir([_fhir_b12(), _fhir_if(3, 6)]).codes
    unread = interpret_fhir([_fhir_b12(), _fhir_if(25, None)])
    assert "IF_ANTIBODY_POSITIVE" not in unread.codes
    # not used, and said so: never silently negative
    assert any("cut-off" in str(i) for i in unread.ignored), unread.ignored


def test_long_export_rejects_a_number_naming_the_cutoff() -> None:
    from b12labs.batch import score_long

    df = pd.DataFrame({"patient_id": ["a", "a"], "collected_at": ["2026-01-01"] * 2, "test": ["2132-9", "31444-3"],
                       "value": ["400", "25"], "unit": ["pg/mL", "U/mL"]})
    episodes, rejects = score_long(df)
    assert len(episodes) == 1 and "IF_ANTIBODY_POSITIVE" not in str(episodes["b12labs_codes"].iloc[0])
    assert "cut-off" in rejects["b12labs_reject_reason"].iloc[0]
