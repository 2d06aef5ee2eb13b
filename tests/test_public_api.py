"""The public surface is small and explicit (httpx style): nothing missing, nothing accidental."""

from __future__ import annotations

import importlib
import sys

import pytest

import b12labs

EXPECTED = {
    "Action", "B12LabsError", "Evidence", "Finding", "InputError", "InputFormatError",
    "Interpretation", "InvalidValueError", "LabPanel", "Measurement", "MissingExtraError",
    "PatientContext", "Profile", "ProfileError", "Severity", "Status", "UnitError",
    "UnknownAnalyteError", "VocabularyError", "__version__", "interpret", "list_profiles",
    "list_rules", "load_profile", "normalize",
}


def test_all_is_sorted_complete_and_exact() -> None:
    assert b12labs.__all__ == sorted(b12labs.__all__)
    assert set(b12labs.__all__) == EXPECTED
    for name in b12labs.__all__:
        assert hasattr(b12labs, name), name
    public = {n for n in vars(b12labs) if not n.startswith("_")} - {"annotations", "Any"}
    submodules = {"errors", "models", "units", "profiles", "vocabulary", "rules", "panels", "batch",
                  "cli", "fhir", "service", "report"}
    accidental = public - EXPECTED - submodules
    assert not accidental, f"accidental exports: {sorted(accidental)}"


def test_error_tree() -> None:
    from b12labs import errors

    for name in ("UnitError", "InvalidValueError", "UnknownAnalyteError", "VocabularyError"):
        cls = getattr(errors, name)
        assert issubclass(cls, errors.InputError) and issubclass(cls, ValueError)
    assert issubclass(errors.ProfileError, ValueError)
    assert issubclass(errors.MissingExtraError, ImportError)
    exceptions = [
        getattr(errors, n)
        for n in errors.__all__
        if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), BaseException)
    ]
    assert len(exceptions) == len(errors.__all__) - 2  # all but ERROR_CODES and ErrorCode
    assert all(issubclass(cls, errors.B12LabsError) for cls in exceptions)
    assert "B12LabsError" in (errors.__doc__ or "")


def test_rule_catalogue_is_listed() -> None:
    rules = b12labs.list_rules()
    # RULES v2: the 41 rules of v1, six new ones (§9) and the ten of results over time (§8)
    assert len(rules) == 57
    assert all(r["sources"] and r["title"] for r in rules)


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("b12labs.fhir", "fhir.resources", "fhir"),
        ("b12labs.service", "fastapi", "service"),
        ("b12labs.batch._dask", "dask", "dask"),
    ],
)
def test_an_optional_feature_without_its_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, blocked: str, extra: str
) -> None:
    for name in list(sys.modules):
        if name in (module, blocked) or name.startswith(module + ".") or name.startswith(blocked + "."):
            monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, blocked, None)
    if module == "b12labs.batch._dask":
        mod = importlib.import_module(module)
        with pytest.raises(b12labs.MissingExtraError, match=rf"b12labs\[{extra}\]"):
            mod._dask()
        return
    if module == "b12labs.service":  # its configuration needs no extra; the app does
        mod = importlib.import_module(module)
        with pytest.raises(b12labs.MissingExtraError, match=rf"b12labs\[{extra}\]"):
            _ = mod.create_app
        return
    with pytest.raises(b12labs.MissingExtraError, match=rf"b12labs\[{extra}\]"):
        importlib.import_module(module)


def test_the_report_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from b12labs.report import CohortSummary, render_html

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"b12labs\[report\]"):
        render_html(CohortSummary(), f"{tmp_path}/r.html", title="t")
