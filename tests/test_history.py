"""interpret(history=...): typed history entries, their errors, and the serial evidence (§8)."""

from __future__ import annotations

import pytest

from b12labs import interpret
from b12labs.errors import InputError, InvalidValueError
from b12labs.models import HistoryEntry

NOW = {"collected_at": "2026-09-01"}


@pytest.mark.parametrize(
    ("history", "code", "where"),
    [
        ([{"b12": "250 ng/L"}], "history-date-missing", "history[0]"),
        ([{"collected_at": "", "b12": "250 ng/L"}], "history-date-missing", "history[0]"),
        ([{"collected_at": "01/02/2026", "b12": "250 ng/L"}], "date-invalid", "history[0].collected_at"),
        ([{"collected_at": "2026-03-01", "b12": "abc"}], "value-unparseable", "history[0].b12"),
        ([{"collected_at": "2026-03-01"}, {"collected_at": "2026-03-02", "b12": "250"}], "unit-missing", "history[1].b12"),
        ([{"collected_at": "2026-03-01", "vitamin_d": "50 nmol/L"}], "history-entry-invalid", "history[0].vitamin_d"),
        ([{"collected_at": "2026-03-01", "context": {"mood": "low"}}], "context-unknown-key", "history[0].mood"),
        ([{"collected_at": "2026-09-02", "b12": "250 ng/L"}], "history-date-after-current", "history[0].collected_at"),
        ([42], "history-entry-invalid", "history[0]"),
        ("2026-03-01", "input-type-invalid", "history"),
    ],
)
def test_a_bad_history_entry_is_a_located_coded_error(history: object, code: str, where: str) -> None:
    with pytest.raises(InputError) as info:
        interpret({"b12": "300 ng/L"}, NOW, history=history)  # type: ignore[arg-type]
    assert info.value.code == code
    assert info.value.analyte == where
    assert str(info.value).startswith(where)


def test_an_entry_in_the_future_of_now_is_refused_without_a_current_time() -> None:
    with pytest.raises(InvalidValueError) as info:
        interpret({"b12": "300 ng/L"}, history=[{"collected_at": "2099-01-01", "b12": "250 ng/L"}])
    assert info.value.code == "date-future"


def test_history_entries_may_be_typed_models() -> None:
    entry = HistoryEntry.parse({"collected_at": "2026-03-01", "b12": "400 ng/L"})
    assert entry.collected_at.isoformat() == "2026-03-01T00:00:00+00:00"
    r = interpret({"b12": "300 ng/L"}, NOW, history=[entry])
    assert "B12_SIGNIFICANT_FALL" in r.codes


def test_a_fall_gives_both_values_dates_the_change_and_the_rcv_with_its_source() -> None:
    r = interpret({"b12": "150 pmol/L"}, NOW, history=[{"collected_at": "2026-03-01", "b12": "300 pg/mL"}])
    f = next(x for x in r.findings if x.code == "B12_SIGNIFICANT_FALL")
    earlier, now = f.evidence
    assert earlier.collected_at.startswith("2026-03-01") and now.collected_at.startswith("2026-09-01")
    assert earlier.reported == "300 pg/mL" and earlier.unit == "pmol/L"
    assert now.change_percent == pytest.approx((150 - earlier.value) / earlier.value * 100, abs=0.1)
    assert now.change == pytest.approx(150 - earlier.value, rel=0.01)
    assert (now.threshold, now.threshold_unit, now.threshold_name) == (23.4, "%", "b12_rcv")
    assert "Cokluk" in (now.threshold_source or "")
    # compared in one unit: the message does not set pg/mL against pmol/L
    assert "221 pmol/L to 150 pmol/L" in f.message and "since 2026-03-01" in f.message
    assert f.severity.value == "warning"


def test_history_in_other_units_is_compared_in_canonical_units() -> None:
    a = interpret({"b12": "300 ng/L"}, NOW, history=[{"collected_at": "2026-03-01", "b12": "295.2 pmol/L"}])
    b = interpret({"b12": "300 ng/L"}, NOW, history=[{"collected_at": "2026-03-01", "b12": "400 ng/L"}])
    assert a.codes == b.codes and "B12_SIGNIFICANT_FALL" in a.codes


def test_no_history_gives_no_serial_finding_and_costs_nothing() -> None:
    r = interpret({"b12": "150 ng/L"}, NOW, history=[])
    assert not {"B12_SIGNIFICANT_FALL", "RETEST_TOO_SOON", "PREVIOUS_DEFICIENCY"} & set(r.codes)
    assert r.ignored == ()


def test_a_conflict_never_lets_the_last_one_win() -> None:
    history = [{"collected_at": "2026-09-01", "b12": "100 ng/L"}]
    r = interpret({"b12": "500 ng/L"}, NOW, history=history)
    assert "RESULT_CONFLICT" in r.codes and "b12" not in r.values
    assert r.status.value == "not_assessed"
    msg = next(f.message for f in r.findings if f.code == "RESULT_CONFLICT")
    assert "100 ng/L" in msg and "500 ng/L" in msg and "current one included" in msg
