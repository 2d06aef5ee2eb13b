"""interpret_fhir and results over time (docs/clinical-logic.md §8): the newest episode's newest
values are the current panel, every earlier result within 730 days is history, and a result
conflict never depends on the order of the resources."""

from __future__ import annotations

from typing import Any

import pytest

from b12labs.errors import InvalidValueError
from b12labs.fhir import interpret_fhir
from b12labs.fhir._read import CONFLICT_REASON, _Inputs, _read
from tests.fhir.test_fhir import bundle, observation

B12 = "2132-9"
MCV = "787-2"
EARLIER = "2026-03-01T08:00:00Z"
CURRENT = "2026-09-01T08:00:00Z"


def read(resources: list[dict[str, Any]]) -> tuple[_Inputs, dict[str, str]]:
    inputs, ignored = _read(bundle(resources), window_days=90, history_days=730)
    return inputs, {i.source: i.reason for i in ignored}


def analytes(entry: dict[str, Any]) -> list[str]:
    return sorted(k for k in entry if k != "collected_at")


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "b12-pat",
        "gender": "female",
        "birthDate": "1970-05-01",
    }


def fall() -> list[dict[str, Any]]:
    """B12 400 pmol/L on 2026-03-01, then 38 % lower on 2026-09-01 (MCV current only)."""
    return [
        patient(),
        observation(B12, value=400, unit="pmol/L", when=EARLIER, rid="b12-march"),
        observation(B12, value=248, unit="pmol/L", when=CURRENT, rid="b12-sept"),
        observation(MCV, value=90, unit="fL", when=CURRENT, rid="mcv-sept"),
    ]


def conflict(order: int) -> list[dict[str, Any]]:
    """Two B12 results with the same specimen time and different values, in either order."""
    low = observation(B12, value=150, unit="pmol/L", when=CURRENT, rid="b12-1")
    high = observation(B12, value=400, unit="pmol/L", when=CURRENT, rid="b12-2")
    pair = [low, high] if order == 0 else [high, low]
    return [patient(), *pair, observation(MCV, value=90, unit="fL", when=CURRENT, rid="mcv")]


# ---------------------------------------------------------------- the reader (no core needed)
def test_the_newest_value_is_current_and_the_earlier_one_history() -> None:
    inputs, ignored = read(fall())
    assert inputs.panel["b12"].value == 248 and inputs.panel["b12"].unit == "pmol/L"
    assert inputs.context["collected_at"].isoformat() == "2026-09-01T08:00:00+00:00"
    [entry] = inputs.history
    assert analytes(entry) == ["b12"] and entry["b12"].value == 400
    assert entry["collected_at"].isoformat() == "2026-03-01T08:00:00+00:00"
    assert "context" not in entry  # what was known then is not reconstructed
    assert not ignored


def test_results_more_than_730_days_before_the_newest_are_not_passed_on() -> None:
    resources = fall()
    resources[1]["effectiveDateTime"] = "2024-08-31T08:00:00Z"  # 731 days before the current
    resources.append(
        observation(B12, value=300, unit="pmol/L", when="2024-09-02T08:00:00Z", rid="b12-729-days")
    )
    inputs, ignored = read(resources)
    assert [e["collected_at"].date().isoformat() for e in inputs.history] == ["2024-09-02"]
    assert ignored["Observation/b12-march"].startswith("older than 730 days")


def test_one_entry_per_specimen_time_in_time_order() -> None:
    resources = [
        *fall(),
        observation(MCV, value=101, unit="fL", when=EARLIER, rid="mcv-march"),
        observation("718-7", value=110, unit="g/L", when="2026-01-15", rid="hb-jan"),
    ]
    inputs, _ = read(list(reversed(resources)))
    assert [(e["collected_at"].date().isoformat(), analytes(e)) for e in inputs.history] == [
        ("2026-01-15", ["hb"]),
        ("2026-03-01", ["b12", "mcv"]),
    ]


def test_a_superseded_result_of_the_newest_episode_is_history() -> None:
    resources = fall()
    resources[1]["effectiveDateTime"] = "2026-08-20T08:00:00Z"  # same 90-day episode
    inputs, ignored = read(resources)
    assert inputs.panel["b12"].value == 248
    assert [analytes(e) for e in inputs.history] == [["b12"]]
    assert not ignored


@pytest.mark.parametrize("order", [0, 1])
def test_a_conflict_is_passed_on_whole_and_never_depends_on_the_order(order: int) -> None:
    inputs, ignored = read(conflict(order))
    assert "b12" not in inputs.panel and "mcv" in inputs.panel
    # both values, as two history entries of that time, always in the same order
    assert [analytes(e) for e in inputs.history] == [["b12"], ["b12"]]
    assert [e["collected_at"].isoformat() for e in inputs.history] == [
        "2026-09-01T08:00:00+00:00"
    ] * 2
    assert [e["b12"].value for e in inputs.history] == [150, 400]
    for label in ("Observation/b12-1", "Observation/b12-2"):
        assert ignored[label].startswith(CONFLICT_REASON)
        assert "150" not in ignored[label] and "400" not in ignored[label]  # no patient value


def test_a_conflict_at_the_newest_time_is_not_replaced_by_an_older_value() -> None:
    resources = [
        *conflict(0),
        observation(B12, value=300, unit="pmol/L", when="2026-08-20", rid="b12-aug"),
    ]
    inputs, _ = read(resources)
    assert "b12" not in inputs.panel
    assert [e["b12"].value for e in inputs.history] == [300, 150, 400]


def test_the_same_result_in_two_units_is_used_once() -> None:
    same = observation(B12, value=247, unit="pg/mL", when=CURRENT, rid="b12-mass")
    twin = observation(B12, value=182.2, unit="pmol/L", when=CURRENT, rid="b12-molar")
    for order in ([same, twin], [twin, same]):
        inputs, ignored = read([patient(), *order])
        assert inputs.panel["b12"].unit == "pg/mL" and not inputs.history
        assert ignored == {"Observation/b12-molar": ignored["Observation/b12-molar"]}
        assert ignored["Observation/b12-molar"].startswith("superseded")


def test_history_days_must_be_positive() -> None:
    with pytest.raises(InvalidValueError):
        interpret_fhir(fall(), history_days=0)


# ---------------------------------------------------------------- through the serial core
def test_a_fall_beyond_the_rcv_is_found_with_both_dates() -> None:
    got = interpret_fhir(bundle(fall()))
    [finding] = [f for f in got.findings if f.code == "B12_SIGNIFICANT_FALL"]
    assert finding.severity.value == "warning"  # 248 pmol/L is in the indeterminate band
    assert "2026-03-01" in finding.message and "38 %" in finding.message
    dates = {e.collected_at[:10] for e in finding.evidence if e.collected_at}
    assert dates == {"2026-03-01", "2026-09-01"}
    assert "B12_SIGNIFICANT_RISE" not in got.codes


def test_an_earlier_result_older_than_730_days_is_not_compared() -> None:
    resources = fall()
    resources[1]["effectiveDateTime"] = "2024-08-31T08:00:00Z"  # 731 days before
    got = interpret_fhir(bundle(resources))
    assert "B12_SIGNIFICANT_FALL" not in got.codes
    assert "Observation/b12-march" in {i.source for i in got.ignored}
    # 729 days before is compared
    resources[1]["effectiveDateTime"] = "2024-09-02T08:00:00Z"
    assert "B12_SIGNIFICANT_FALL" in interpret_fhir(bundle(resources)).codes


def test_a_result_conflict_gives_the_same_verdict_in_either_order() -> None:
    first, second = (interpret_fhir(bundle(conflict(order))) for order in (0, 1))
    assert "RESULT_CONFLICT" in first.codes
    assert (first.status, first.codes) == (second.status, second.codes)
    assert first.findings == second.findings
    assert "b12" not in first.values  # neither value is used
    [finding] = [f for f in first.findings if f.code == "RESULT_CONFLICT"]
    assert "150" in finding.message and "400" in finding.message  # names both


def test_a_conflict_in_an_earlier_result_is_reported_and_not_compared() -> None:
    resources = [*fall(), observation(B12, value=150, unit="pmol/L", when=EARLIER, rid="b12-x")]
    got = interpret_fhir(bundle(resources))
    assert "RESULT_CONFLICT" in got.codes and "B12_SIGNIFICANT_FALL" not in got.codes
    assert got.values["b12"] == 248  # the current result is not in conflict


def test_the_same_earlier_result_in_two_units_is_not_a_repeat() -> None:
    twin = observation(B12, value=542, unit="pg/mL", when=EARLIER, rid="b12-march-mass")
    got = interpret_fhir(bundle([*fall(), twin]))
    assert "RESULT_CONFLICT" not in got.codes and "B12_SIGNIFICANT_FALL" in got.codes


def test_a_result_dated_in_the_future_is_not_used_and_fails_nothing() -> None:
    resources = fall()
    resources[1]["effectiveDateTime"] = "2099-03-01T08:00:00Z"
    got = interpret_fhir(bundle(resources))
    assert got.values["b12"] == 248 and "B12_SIGNIFICANT_FALL" not in got.codes
    [item] = [i for i in got.ignored if i.source == "Observation/b12-march"]
    assert item.code == "date-future" and "future" in item.reason
