"""The input grammar's own readings, and the validation of profiles and results it enables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from b12labs import _grammar as grammar
from b12labs import interpret
from b12labs._docs import render_input
from b12labs.batch import score_frame
from b12labs.errors import ERROR_CODES, InvalidValueError, ProfileError
from b12labs.fhir import interpret_fhir
from b12labs.models import parse_bool
from b12labs.profiles import THRESHOLD_ORDER, load_profile
from tests._paths import REPO


def test_input_page_is_generated_from_the_tables() -> None:
    page = (REPO / "docs" / "input.md").read_text(encoding="utf-8")
    assert page == render_input()
    for word in [*grammar.QUALITATIVE_WORDS, *grammar.TRUE_WORDS, *grammar.FALSE_WORDS]:
        assert f"`{word}`" in page
    for marker in grammar.MISSING_MARKERS:
        assert (f"`{marker}`" if marker else "(blank)") in page
    for text in grammar.COMPARATORS:
        assert f"`{text}`" in page
    for code in ERROR_CODES:
        if f"errors.md#{code})" in page:
            assert f'<a id="{code}"></a>' in (REPO / "docs" / "errors.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("marker", [*grammar.MISSING_MARKERS, *(m.upper() for m in grammar.MISSING_MARKERS), None, float("nan"), "  NA "])
def test_missing_markers(marker: Any) -> None:
    assert grammar.is_missing(marker)
    assert "b12" not in interpret({"b12": marker}).values


@pytest.mark.parametrize("word", [*grammar.TRUE_WORDS, *(w.upper() for w in grammar.TRUE_WORDS), True, 1, 1.0])
def test_true_words(word: Any) -> None:
    assert parse_bool(word, "pregnant") is True


@pytest.mark.parametrize("word", [*grammar.FALSE_WORDS, *(w.upper() for w in grammar.FALSE_WORDS), False, 0, 0.0])
def test_false_words(word: Any) -> None:
    assert parse_bool(word, "pregnant") is False


@pytest.mark.parametrize("bad", ["maybe", 2, -1, 0.5, "yess", [], {}])
def test_bad_booleans(bad: Any) -> None:
    with pytest.raises(InvalidValueError) as info:
        parse_bool(bad, "pregnant")
    assert info.value.code == "boolean-invalid"


@pytest.mark.parametrize(("text", "comparator"), list(grammar.COMPARATORS.items()))
def test_every_comparator_spelling(text: str, comparator: str) -> None:
    cell = grammar.read_cell(f"{text}50 pmol/L")
    assert cell.comparator == comparator and cell.value == 50 and cell.unit == "pmol/L"


@pytest.mark.parametrize("digits", ["٢٥٠", "۲۵۰", "２５０", "२५०", "25٠"])
def test_non_ascii_digits_are_refused_everywhere(digits: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        interpret({"b12": f"{digits} pmol/L"})
    assert info.value.code == "value-non-ascii-digits"
    out = score_frame(pd.DataFrame({"b12": [f"{digits} pmol/L", "250 pmol/L"]}))
    assert out["b12labs_error_code"].astype(str).tolist() == ["value-non-ascii-digits", ""]
    with pytest.raises(InvalidValueError) as info:
        interpret({"b12": "250 pmol/L"}, {"age": digits})
    assert info.value.code == "value-non-ascii-digits"


@pytest.mark.parametrize("n", [grammar.MAX_NUMBER_CHARS + 1, 100, 400, 5000])
def test_absurdly_long_numbers_are_refused(n: int) -> None:
    text = "9" * n
    with pytest.raises(InvalidValueError) as info:
        interpret({"b12": f"{text} pmol/L"})
    assert info.value.code == "value-too-large"
    assert len(str(info.value)) < 400  # named, not echoed
    out = score_frame(pd.DataFrame({"b12": [f"{text} pmol/L", text, "250 pmol/L"]}))
    assert out["b12labs_error_code"].astype(str).tolist()[:2] == ["value-too-large"] * 2


def test_the_comma_error_has_one_wording() -> None:
    with pytest.raises(InvalidValueError) as info:
        interpret({"b12": "1,5 pmol/L"})
    out = score_frame(pd.DataFrame({"b12": ["1,5 pmol/L", "250 pmol/L"]}))
    batch = str(out["b12labs_error"].iloc[0])
    assert info.value.reason in batch and info.value.accepted in batch  # type: ignore[operator]


# ---- profiles


def _profile(tmp_path: Path, thresholds: str) -> Path:
    # a new file name per profile: load_profile caches by path
    path = tmp_path / f"p{len(list(tmp_path.iterdir()))}.toml"
    path.write_text(
        'id = "t"\nversion = "1"\nextends = "nice-ng239-2024"\n[sources]\nx = "a source"\n'
        f"[thresholds]\n{thresholds}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    "thresholds",
    [
        'b12_deficient = { value = 400, unit = "ng/L", source = "x" }',
        'b12_indeterminate_upper = { value = 100, unit = "ng/L", source = "x" }',
        'b12_high = { value = 200, unit = "ng/L", source = "x" }',
        'holotc_deficient = { value = 90, unit = "pmol/L", source = "x" }',
        'holotc_indeterminate_upper = { value = 10, unit = "pmol/L", source = "x" }',
    ],
)
def test_a_profile_with_bands_out_of_order_is_refused(tmp_path: Path, thresholds: str) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(_profile(tmp_path, thresholds))
    assert info.value.code == "profile-threshold-order"
    assert info.value.key and info.value.key.startswith("thresholds.")


def test_the_order_compares_canonical_values(tmp_path: Path) -> None:
    # 150 pmol/L is below 350 ng/L (258 pmol/L): in order although 150 < 350 anyway; and
    # 300 pmol/L (406 ng/L) lies above an indeterminate limit of 350 ng/L
    load_profile(_profile(tmp_path, 'b12_deficient = { value = 150, unit = "pmol/L", source = "x" }'))
    with pytest.raises(ProfileError):
        load_profile(_profile(tmp_path, 'b12_deficient = { value = 300, unit = "pmol/L", source = "x" }'))


@pytest.mark.parametrize("key", ["b12_deficient", "mma_elevated", "adult_age", "b12_injection_recent"])
def test_a_negative_threshold_is_refused(tmp_path: Path, key: str) -> None:
    unit = {"b12_deficient": "ng/L", "mma_elevated": "umol/L", "adult_age": "years", "b12_injection_recent": "days"}[key]
    with pytest.raises(ProfileError) as info:
        load_profile(_profile(tmp_path, f'{key} = {{ value = -1, unit = "{unit}", source = "x" }}'))
    assert info.value.code == "profile-threshold-negative"


def test_shipped_profiles_respect_the_order() -> None:
    from b12labs.profiles import list_profiles

    for p in list_profiles():
        prof = load_profile(p["id"])
        for chain in THRESHOLD_ORDER:
            values = [prof.thresholds[k].canonical for k in chain]
            assert values == sorted(values)


# ---- results


def test_result_with_an_inverted_reference_interval() -> None:
    with pytest.raises(InvalidValueError) as info:
        interpret({"b12": {"value": 250, "unit": "pmol/L", "ref_low": 300, "ref_high": 200}})
    assert info.value.code == "reference-inverted"


def _obs(**value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2026-01-05T08:00:00Z",
        **value,
    }


def test_fhir_inverted_reference_range_is_refused_with_its_code() -> None:
    obs = _obs(
        valueQuantity={"value": 250, "unit": "pmol/L", "system": "http://unitsofmeasure.org", "code": "pmol/L"},
        referenceRange=[{"low": {"value": 300, "unit": "pmol/L"}, "high": {"value": 200, "unit": "pmol/L"}}],
    )
    result = interpret_fhir([obs])
    assert "b12" not in result.values
    assert [i.code for i in result.ignored] == ["reference-inverted"]


@pytest.mark.parametrize(("quantity", "code"), [
    ({"value": 10**400, "unit": "pmol/L"}, "value-too-large"),
    ({"value": 1e300, "unit": "pmol/L"}, "value-too-large"),
    ({"value": 250, "unit": "pmol/L", "comparator": "ad"}, "comparator-invalid"),
    ({"value": -5, "unit": "pmol/L"}, "value-negative"),
    ({"value": 250, "unit": "furlong"}, "unit-unknown"),
    ({"value": 250}, "unit-missing"),
])
def test_fhir_value_quantity_errors_are_coded(quantity: dict[str, Any], code: str) -> None:
    result = interpret_fhir([_obs(valueQuantity=quantity)])
    assert "b12" not in result.values
    assert [i.code for i in result.ignored] == [code]


def test_batch_reference_limits_read_as_in_interpret() -> None:
    frame = pd.DataFrame(
        {
            "b12": ["250 pmol/L"] * 5,
            "b12_ref_low": ["300", "100", "<100", "abc", "-1"],
            "b12_ref_high": ["200", "600", "600", "600", "600"],
        }
    )
    out = score_frame(frame)
    assert out["b12labs_error_code"].astype(str).tolist() == [
        "reference-inverted",
        "",
        "reference-invalid",
        "reference-invalid",
        "reference-invalid",
    ]
    for low, code in (("300", "reference-inverted"), ("<100", "reference-invalid"), ("abc", "reference-invalid"), ("-1", "reference-invalid")):
        with pytest.raises(InvalidValueError) as info:
            interpret({"b12": {"value": "250 pmol/L", "ref_low": low, "ref_high": "600" if low != "300" else "200"}})
        assert info.value.code == code


def test_long_export_rejects_carry_error_codes() -> None:
    from b12labs.batch import score_long

    df = pd.DataFrame(
        {
            "patient_id": ["P1", "", "P2", "P3", "P4", "P5", "P6", "P7"],
            "collected_at": ["2026-01-01", "2026-01-01", "x", "2026-01-01", "2026-01-01", "2026-01-01", "2026-01-01", "2026-01-01"],
            "test": ["2132-9", "2132-9", "2132-9", "99999-9", "2132-9", "2132-9", "31444-3", "2132-9"],
            "value": ["150", "150", "150", "1", "abc", "1,5", "maybe", "٢٥٠"],
            "unit": ["pg/mL"] * 8,
        }
    )
    episodes, rejects = score_long(df)
    assert episodes["patient_id"].tolist() == ["P1"]
    by_row = dict(zip(rejects["b12labs_row"].tolist(), rejects["b12labs_reject_code"].tolist(), strict=True))
    assert by_row == {
        2: "field-missing",
        3: "date-invalid",
        4: "analyte-unknown",
        5: "value-unparseable",
        6: "value-decimal-comma",
        7: "qualitative-unknown",
        8: "value-non-ascii-digits",
    }
    assert all(code in ERROR_CODES for code in by_row.values())
