"""The exception tree and the error-code registry: one tree, one wording per code, codes
documented and carried by every error."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pandas as pd
import pytest

import b12labs
from b12labs import interpret
from b12labs._docs import render_errors
from b12labs.batch import score_frame
from b12labs.errors import ERROR_CODES, B12LabsError, InputError, ProfileError
from b12labs.profiles import load_profile
from tests._paths import REPO


def _modules() -> list[str]:
    names = ["b12labs"]
    for info in pkgutil.walk_packages(b12labs.__path__, "b12labs."):
        if not info.name.endswith("__main__"):  # importing runs the command line
            names.append(info.name)
    return names


def test_every_exception_class_of_the_package_is_in_the_tree() -> None:
    outside = []
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra not installed
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ != name or not issubclass(obj, BaseException):
                continue
            if not issubclass(obj, B12LabsError):
                outside.append(f"{name}.{obj.__qualname__}")
    assert outside == [], "exceptions outside the B12LabsError tree: " + ", ".join(outside)


def test_every_class_default_code_is_registered() -> None:
    def walk(cls: type[B12LabsError]) -> list[type[B12LabsError]]:
        return [cls, *(c for s in cls.__subclasses__() for c in walk(s))]

    for cls in walk(B12LabsError):
        assert cls.code in ERROR_CODES, cls


def test_registry_entries_are_complete() -> None:
    for code, entry in ERROR_CODES.items():
        assert entry.code == code
        assert code == code.lower() and " " not in code
        assert entry.title and entry.explanation and entry.fix


def test_errors_page_has_one_anchor_per_code() -> None:
    page = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    assert page == render_errors()
    for code in ERROR_CODES:
        assert page.count(f'<a id="{code}"></a>') == 1


def test_unregistered_code_is_refused() -> None:
    with pytest.raises(AssertionError):
        InputError(code="no-such-code")


# every class of bad input: a code, and the reason worded as the code's title
BAD_PANELS: list[tuple[object, object, str]] = [
    ({"b12": "abc"}, None, "value-unparseable"),
    ({"b12": "1,5 pmol/L"}, None, "value-decimal-comma"),
    ({"b12": "٢٥٠ pmol/L"}, None, "value-non-ascii-digits"),
    ({"b12": "9" * 400}, None, "value-too-large"),
    ({"b12": 10**400}, None, "value-too-large"),
    ({"b12": {"value": 10**400, "unit": "pmol/L"}}, None, "value-too-large"),
    ({"b12": float("inf")}, None, "value-not-finite"),
    ({"b12": "-3 pmol/L"}, None, "value-negative"),
    ({"b12": True}, None, "value-type-invalid"),
    ({"if_antibody": False}, None, "value-type-invalid"),
    ({"b12": {"value": True, "unit": "pmol/L"}}, None, "value-type-invalid"),
    ({"b12": [250]}, None, "value-type-invalid"),
    ({"b12": "~3 pmol/L"}, None, "comparator-invalid"),
    ({"b12": {"value": 250, "unit": "pmol/L", "comparator": "~"}}, None, "comparator-invalid"),
    ({"if_antibody": "12"}, None, "qualitative-needs-cutoff"),
    ({"if_antibody": "perhaps"}, None, "qualitative-unknown"),
    ({"if_antibody": {"value": "<20", "ref_high": 10}}, None, "value-censored-invalid"),
    ({"b12": "250"}, None, "unit-missing"),
    ({"b12": "250 parsec"}, None, "unit-unknown"),
    ({"b12": "250 %"}, None, "unit-wrong-dimension"),
    ({"b12": {"value": "250 pmol/L", "unit": "pg/mL"}}, None, "unit-conflict"),
    ({"b12": {"value": 250, "unit": "pmol/L", "ref_high": "abc"}}, None, "reference-invalid"),
    ({"b12": {"value": 250, "unit": "pmol/L", "ref_high": "<300"}}, None, "reference-invalid"),
    ({"b12": {"value": 250, "unit": "pmol/L", "ref_low": -1}}, None, "reference-invalid"),
    ({"b12": {"value": 250, "unit": "pmol/L", "ref_high": True}}, None, "reference-invalid"),
    (
        {"b12": {"value": 250, "unit": "pmol/L", "ref_low": 300, "ref_high": 200}},
        None,
        "reference-inverted",
    ),
    ({"vitamin_x": "1"}, None, "analyte-unknown"),
    ([("b12", "250 pmol/L")], None, "input-type-invalid"),
    ({"b12": "250 pmol/L"}, ["age", 3], "input-type-invalid"),
    ({"b12": "250 pmol/L"}, {"age": True}, "value-type-invalid"),
    ({"b12": "250 pmol/L"}, {"age": "<60"}, "value-censored-invalid"),
    ({"b12": "250 pmol/L"}, {"age": "sixty"}, "value-unparseable"),
    ({"b12": "250 pmol/L"}, {"age": 10**400}, "value-too-large"),
    ({"b12": "250 pmol/L"}, {"age": 200}, "value-out-of-range"),
    ({"b12": "250 pmol/L"}, {"age": -1}, "value-negative"),
    ({"b12": "250 pmol/L"}, {"days_since_b12_injection": False}, "value-type-invalid"),
    ({"b12": "250 pmol/L"}, {"medications": {"metformin": "500 mg"}}, "value-type-invalid"),
    ({"b12": "250 pmol/L"}, {"medications": b"metformin"}, "value-type-invalid"),
    ({"b12": "250 pmol/L"}, {"symptoms": [1, 2]}, "value-type-invalid"),
    ({"b12": "250 pmol/L"}, {"pregnant": "maybe"}, "boolean-invalid"),
    ({"b12": "250 pmol/L"}, {"pregnant": 2}, "boolean-invalid"),
    ({"b12": "250 pmol/L"}, {"sex": "q"}, "context-value-invalid"),
    ({"b12": "250 pmol/L"}, {"b12_treatment": "pill"}, "context-value-invalid"),
    ({"b12": "250 pmol/L"}, {"agee": 60}, "context-unknown-key"),
    ({"b12": "250 pmol/L"}, {"symptoms": "telepathy"}, "vocabulary-unknown"),
]


@pytest.mark.parametrize(("panel", "context", "code"), BAD_PANELS, ids=[c for _, _, c in BAD_PANELS])
def test_bad_input_has_a_code_and_the_codes_wording(panel: object, context: object, code: str) -> None:
    with pytest.raises(B12LabsError) as info:
        interpret(panel, context)  # type: ignore[arg-type]
    exc = info.value
    assert exc.code == code, (exc.code, str(exc))
    if isinstance(exc, InputError) and code != "vocabulary-unknown":
        assert exc.reason.startswith(ERROR_CODES[code].title), (exc.reason, code)
    text = str(exc)
    if isinstance(exc, InputError) and exc.analyte:
        assert not text.startswith(f"{exc.analyte}: {exc.analyte}:"), text  # no double prefix


@pytest.mark.parametrize("word", ["equivocal", "Borderline", "indeterminate", "inconclusive"])
def test_equivocal_is_a_value_not_an_error(word: str) -> None:
    # qualitative-equivocal stays registered (codes are never reused) but is no longer raised
    assert "qualitative-equivocal" in ERROR_CODES
    assert "no longer raised" in ERROR_CODES["qualitative-equivocal"].explanation.lower()
    for panel in ({"if_antibody": word}, {"if_antibody": {"value": word, "ref_high": 10}}):
        result = interpret(panel)  # type: ignore[arg-type]
        assert result.status.value == "not_assessed"
        assert "if_antibody" not in result.values


def test_unknown_context_key_lists_the_accepted_keys() -> None:
    with pytest.raises(InputError) as info:
        interpret({"b12": "250 pmol/L"}, {"agee": 60})
    for key in ("age", "sex", "pregnant", "medications", "symptoms"):
        assert key in str(info.value)


def test_unit_missing_hint_is_analyte_specific() -> None:
    for analyte, text, factor in (("b12", "250", "1.36x"), ("hb", "12", "10x"), ("folate", "5", "2.27x")):
        with pytest.raises(InputError) as info:
            interpret({analyte: text})
        assert factor in str(info.value), str(info.value)
        if analyte != "b12":
            assert "1.36" not in str(info.value)


@pytest.mark.parametrize("profile", [None, 3, "", ["nice-ng239-2024"]])
def test_profile_argument_of_the_wrong_kind(profile: object) -> None:
    with pytest.raises(ProfileError) as info:
        interpret({"b12": "250 pmol/L"}, profile=profile)  # type: ignore[arg-type]
    assert info.value.code == "option-invalid"


@pytest.mark.parametrize("frame", [None, {"b12": ["250 pmol/L"]}, "b12\n250", [1, 2]])
def test_score_frame_of_something_else(frame: object) -> None:
    with pytest.raises(B12LabsError) as info:
        score_frame(frame)  # type: ignore[arg-type]
    assert info.value.code == "input-type-invalid"


@pytest.mark.parametrize(("kwargs", "code"), [({"decimal": ";"}, "option-invalid"), ({"threads": 0}, "option-invalid"), ({"threads": True}, "option-invalid")])
def test_score_frame_options(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(B12LabsError) as info:
        score_frame(pd.DataFrame({"b12": ["250 pmol/L"]}), **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code


def test_interpret_decimal_option() -> None:
    with pytest.raises(B12LabsError) as info:
        interpret({"b12": "250 pmol/L"}, decimal=";")
    assert info.value.code == "option-invalid"


def test_batch_error_code_column_sits_next_to_the_error_column() -> None:
    df = pd.DataFrame(
        {
            "b12": ["250 pmol/L", "abc", "1,5 pmol/L", "-2 pmol/L", "", "9000000 pmol/L"],
            "age": ["60", "True", "x", "<3", "200", "40"],
        }
    )
    out = score_frame(df)
    cols = list(out.columns)
    assert cols[cols.index("b12labs_error") + 1] == "b12labs_error_code"
    codes = out["b12labs_error_code"].astype(str).tolist()
    assert codes == [
        "",
        "value-unparseable",
        "value-decimal-comma;value-unparseable",
        "value-negative;value-censored-invalid",
        "value-out-of-range",
        "value-implausible",
    ]
    assert (out["b12labs_error"].astype(str) == "").tolist() == [c == "" for c in codes]


def test_profile_load_errors_are_coded() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("no-such-profile")
    assert info.value.code == "profile-invalid"


def test_option_errors_outside_the_core_are_coded() -> None:
    from b12labs._dates import parse_dates
    from b12labs.panels import assemble
    from b12labs.report import CohortSummary

    with pytest.raises(B12LabsError) as info:
        parse_dates(pd.Series(["2026-01-01"]), date_format="%Q%")
    assert info.value.code == "option-invalid"
    with pytest.raises(B12LabsError) as info:
        CohortSummary(hist_bins=0)
    assert info.value.code == "option-invalid"
    with pytest.raises(B12LabsError) as info:
        assemble([], window_days=0)
    assert info.value.code == "option-invalid"
