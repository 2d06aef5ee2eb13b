"""Results over time (RULES.md v2 §8) in the wide batch format (``history=True``,
``b12labs score --history``): each row's history is the same patient's earlier rows, and the
batch gives what interpret(panel, context, history=[those rows]) gives, row by row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12labs import interpret
from b12labs.batch import ScoreOptions, score_file, score_frame
from b12labs.errors import B12LabsError, InputFormatError
from tests._paths import REPO
from tests.batch.test_serial import CONTEXT, CURRENT, ENTRY, SERIAL_CASES, _history
from tests.rules._cases import Case

#: one wide row: (panel, context with its collected_at)
Row = tuple[dict[str, Any], dict[str, Any]]


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(value)
    return "" if value is None else str(value)


def _when(row: Row) -> pd.Timestamp:
    return pd.Timestamp(row[1]["collected_at"], tz="UTC")


def patient_rows(panel: dict[str, Any], context: dict[str, Any], history: list[dict[str, Any]]) -> list[Row]:
    """A panel and its history as one patient's wide rows, sorted by collection date."""
    rows: list[Row] = []
    for entry in history:
        results = {k: v for k, v in entry.items() if k not in ("collected_at", "context")}
        rows.append((results, {**(entry.get("context") or {}), "collected_at": entry["collected_at"]}))
    rows.append((dict(panel), dict(context)))
    return sorted(rows, key=_when)  # stable: same-time rows keep their order


def to_wide(patients: list[list[Row]]) -> pd.DataFrame:
    records = []
    for i, rows in enumerate(patients):
        for panel, context in rows:
            record = {"patient_id": f"P{i:04d}"}
            record.update({k: _cell(v) for k, v in panel.items()})
            record.update({k: _cell(v) for k, v in context.items()})
            records.append(record)
    return pd.DataFrame(records).fillna("").astype("string")


def expected(rows: list[Row], k: int) -> tuple[str, tuple[str, ...]] | None:
    """interpret() of row k with the patient's other rows collected at or before it (None
    when interpret() refuses the row's own context: the batch reports it on the row)."""
    panel, context = rows[k]
    history = []
    for j, (p, c) in enumerate(rows):
        if j != k and _when((p, c)) <= _when(rows[k]):
            own = {f: v for f, v in c.items() if f != "collected_at"}
            history.append({**p, "collected_at": c["collected_at"], **({"context": own} if own else {})})
    try:
        result = interpret(panel, context, history=history)
    except B12LabsError:
        return None
    return result.status.value, tuple(sorted(result.codes))


def _outcomes(scored: pd.DataFrame) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (str(s), tuple(sorted(c for c in str(codes).split(";") if c)))
        for s, codes in zip(scored["b12labs_status"], scored["b12labs_codes"], strict=True)
    ]


def _check_every_row(patients: list[list[Row]]) -> pd.DataFrame:
    frame = to_wide(patients)
    scored = score_frame(frame, history=True)
    assert len(scored) == len(frame)
    assert list(scored.index) == list(frame.index)
    got = _outcomes(scored)
    want = [expected(rows, k) for rows in patients for k in range(len(rows))]
    errors = scored["b12labs_error_code"].astype(str).tolist()
    for n, (g, w) in enumerate(zip(got, want, strict=True)):
        if w is None:
            assert errors[n] not in ("", "nan"), f"row {n}: refused by interpret, no error"
            continue
        assert g == w, f"row {n}: batch {g} != interpret {w}"
    return scored


def _case_rows(case: Case) -> list[Row]:
    return patient_rows(case.panel, case.context, list(case.history))


CASES = [c for c in SERIAL_CASES if c.context.get("collected_at")]


def test_serial_rule_cases_score_the_same_in_the_wide_format() -> None:
    assert len(CASES) > 40
    scored = _check_every_row([_case_rows(c) for c in CASES])
    # the hidden serial columns never reach the output; the input columns are untouched
    assert not [c for c in scored.columns if "serial" in str(c)]


def test_each_case_alone_gives_the_case_outcome_on_its_last_row() -> None:
    for case in CASES:
        rows = _case_rows(case)
        scored = score_frame(to_wide([rows]), history=True)
        last = [k for k, r in enumerate(rows) if r[1] is not None and r[0] == case.panel][-1]
        result = interpret(case.panel, case.context, history=list(case.history))
        assert _outcomes(scored)[last] == (result.status.value, tuple(sorted(result.codes))), case.id


SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(patients=st.lists(st.tuples(CURRENT, CONTEXT, st.lists(ENTRY, max_size=4)), min_size=1, max_size=5))
def test_wide_history_equals_interpret_with_the_earlier_rows_for_every_row(
    patients: list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]],
) -> None:
    _check_every_row([patient_rows(p, c, _history(e)) for p, c, e in patients])


def test_a_same_time_conflict_voids_both_rows_value_whatever_the_order() -> None:
    rows = [({"b12": "150 ng/L"}, {"collected_at": "2026-09-01T09:00"}),
            ({"b12": "450 ng/L"}, {"collected_at": "2026-09-01T09:00"})]
    for order in (rows, rows[::-1]):
        scored = score_frame(to_wide([order]), history=True)
        assert _outcomes(scored) == [("not_assessed", ("RESULT_CONFLICT",))] * 2
        # the output keeps the input's cells
        assert scored["b12"].tolist() == [p["b12"] for p, _ in order]


def test_without_history_the_rows_score_as_without_the_option() -> None:
    frame = to_wide([[({"b12": "150 ng/L"}, {"collected_at": "2026-09-01"})],
                     [({"b12": "450 ng/L"}, {"collected_at": "2026-09-01", "b12_treatment_started": "2026-08-01",
                                             "b12_treatment": "oral"})]])
    plain = score_frame(frame)
    with_history = score_frame(frame, history=True)
    pd.testing.assert_frame_equal(plain.astype(str), with_history.astype(str))


def test_rows_without_a_patient_id_or_date_are_scored_without_history() -> None:
    frame = pd.DataFrame({
        "patient_id": ["A", "A", "", "A"],
        "collected_at": ["2026-03-01", "not a date", "2026-05-01", "2026-09-01"],
        "b12": ["400 ng/L", "150 ng/L", "150 ng/L", "250 ng/L"],
    }).astype("string")
    scored = score_frame(frame, history=True)
    plain = score_frame(frame)
    codes = scored["b12labs_codes"].astype(str).tolist()
    assert codes[:3] == plain["b12labs_codes"].astype(str).tolist()[:3]
    assert "B12_SIGNIFICANT_FALL" in codes[3]  # 400 -> 250; the undated 150 is not history
    assert "collected_at" in str(scored["b12labs_error"].iloc[1])


@pytest.mark.parametrize(
    ("pids", "dates", "message"),
    [
        (["A", "B", "A"], ["2026-01-01", "2026-01-01", "2026-02-01"], "data row 3 has the patient id of rows above"),
        (["A", "A"], ["2026-02-01", "2026-01-01"], "data row 2 was collected before"),
    ],
)
def test_unsorted_input_is_refused_with_what_to_do(pids: list[str], dates: list[str], message: str) -> None:
    frame = pd.DataFrame({"patient_id": pids, "collected_at": dates, "b12": ["300 ng/L"] * len(pids)})
    with pytest.raises(InputFormatError, match=message) as info:
        score_frame(frame, history=True)
    assert "Sort it by patient id, then collection date" in str(info.value)
    assert info.value.code == "input-format"
    score_frame(frame)  # without history the order does not matter


@pytest.mark.parametrize("drop", ["patient_id", "collected_at"])
def test_missing_patient_or_date_column_is_refused(drop: str) -> None:
    frame = pd.DataFrame({"patient_id": ["A"], "collected_at": ["2026-01-01"], "b12": ["300 ng/L"]})
    with pytest.raises(InputFormatError) as info:
        score_frame(frame.drop(columns=[drop]), history=True)
    assert info.value.code == "history-columns-missing"


def test_unit_columns_and_header_units_are_read_for_the_history() -> None:
    frame = pd.DataFrame({
        "MRN": ["A", "A"],
        "specimen_date": ["2026-03-01", "2026-09-01"],
        "B12 (pg/mL)": ["400", "250"],
        "mma": ["0.2", "0.5"],
        "mma_unit": ["umol/L", "umol/L"],
    })
    codes = score_frame(frame, history=True)["b12labs_codes"].astype(str).tolist()
    assert "B12_SIGNIFICANT_FALL" in codes[1]


# ------------------------------------------------------------------------------------------
# streaming: history across chunk boundaries (score_file, b12labs score --history)


def _long_patients() -> pd.DataFrame:
    return to_wide([_case_rows(c) for c in CASES])


@pytest.mark.parametrize("chunksize", [1, 2, 3, 7])
def test_streaming_in_small_chunks_gives_the_whole_frame_result(tmp_path: Path, chunksize: int) -> None:
    frame = _long_patients()
    src = tmp_path / "wide.csv"
    frame.to_csv(src, index=False)
    whole = score_frame(frame, history=True)
    out = tmp_path / "out.csv"
    score_file(src, out, ScoreOptions(format="wide", chunksize=chunksize, history=True))
    streamed = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(streamed) == len(frame)
    assert streamed["patient_id"].tolist() == frame["patient_id"].tolist()
    for col in ("b12labs_status", "b12labs_codes", "b12labs_comment", "b12labs_error"):
        assert streamed[col].tolist() == whole[col].astype(str).replace("nan", "").tolist(), col


def test_a_patient_seen_again_in_a_later_chunk_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "wide.csv"
    pd.DataFrame({
        "patient_id": ["A", "A", "B", "B", "A"],
        "collected_at": ["2026-01-01", "2026-02-01", "2026-01-01", "2026-02-01", "2026-03-01"],
        "b12": ["300 ng/L"] * 5,
    }).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    with pytest.raises(InputFormatError, match="data row 5 has the patient id of rows above"):
        score_file(src, out, ScoreOptions(format="wide", chunksize=2, history=True))
    assert not out.exists()


def test_history_with_the_dask_engine_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "wide.csv"
    pd.DataFrame({"patient_id": ["A"], "collected_at": ["2026-01-01"], "b12": ["300 ng/L"]}).to_csv(src, index=False)
    with pytest.raises(InputFormatError, match="pandas engine"):
        score_file(src, tmp_path / "o.csv", ScoreOptions(format="wide", engine="dask", history=True))


def _score(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "b12labs", "score", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )


@pytest.mark.slow
def test_cli_history_end_to_end_across_chunks(tmp_path: Path) -> None:
    frame = _long_patients()
    src = tmp_path / "export.csv"
    frame.to_csv(src, index=False)
    whole = score_frame(frame, history=True)
    out = tmp_path / "out.csv"
    done = _score(str(src), "--history", "--chunksize", "3", "-o", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    streamed = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert streamed["b12labs_codes"].tolist() == whole["b12labs_codes"].astype(str).tolist()
    assert not [c for c in streamed.columns if "serial" in c]
    # without --history the same rows are scored one by one
    plain = _score(str(src), "-o", str(tmp_path / "plain.csv"), "--quiet")
    assert plain.returncode == 0, plain.stderr
    assert pd.read_csv(tmp_path / "plain.csv", dtype=str, keep_default_na=False)[
        "b12labs_codes"
    ].tolist() != streamed["b12labs_codes"].tolist()


@pytest.mark.slow
def test_cli_history_refuses_unsorted_and_missing_columns(tmp_path: Path) -> None:
    src = tmp_path / "unsorted.csv"
    src.write_text("patient_id,collected_at,b12\nA,2026-03-01,400 ng/L\nA,2026-01-01,150 ng/L\n")
    out = tmp_path / "out.csv"
    done = _score(str(src), "--history", "-o", str(out), "--chunksize", "1")
    assert done.returncode != 0
    assert "not sorted by collection date" in done.stderr and "Sort it by patient id" in done.stderr
    assert not out.exists()
    nodate = tmp_path / "nodate.csv"
    nodate.write_text("mrn,b12\nA,400 ng/L\n")
    done = _score(str(nodate), "--history", "-o", str(out))
    assert done.returncode != 0 and "collection date" in done.stderr
    assert "--history" in _score("--help").stdout


def test_dates_in_a_given_format_place_the_rows() -> None:
    frame = pd.DataFrame({"patient_id": ["A", "A"], "collected_at": ["01/03/2026", "01/09/2026"],
                          "b12": ["400 ng/L", "250 ng/L"]})
    codes = score_frame(frame, history=True, date_format="%d/%m/%Y")["b12labs_codes"].astype(str)
    assert "B12_SIGNIFICANT_FALL" in codes.iloc[1]


def test_a_malformed_line_keeps_its_error_on_its_row_when_rows_are_held_back(tmp_path: Path) -> None:
    src = tmp_path / "wide.csv"
    src.write_text(
        "patient_id,collected_at,b12\n"
        "A,2026-01-01,400 ng/L\n"
        "B,2026-01-01,400 ng/L\n"
        "B,2026-06-01,250 ng/L,extra\n"
        "B,2026-09-01,250 ng/L\n"
        "C,2026-01-01,300 ng/L\n"
    )
    out = tmp_path / "out.csv"
    score_file(src, out, ScoreOptions(format="wide", chunksize=2, history=True))
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    # the reader blanks a malformed line's cells: it has no patient id, so no history
    assert got["patient_id"].tolist() == ["A", "B", "", "B", "C"]
    assert ["line-malformed" in c for c in got["b12labs_error_code"]] == [False, False, True, False, False]


def test_a_patient_id_column_of_another_name_is_mapped() -> None:
    frame = pd.DataFrame({"Hospital no": ["A", "A"], "collected_at": ["2026-03-01", "2026-09-01"],
                          "b12": ["400 ng/L", "250 ng/L"]})
    with pytest.raises(InputFormatError, match="patient id"):
        score_frame(frame, history=True)
    scored = score_frame(frame, history=True, columns={"Hospital no": "patient_id"})
    assert "B12_SIGNIFICANT_FALL" in str(scored["b12labs_codes"].iloc[1])
    assert scored["Hospital no"].tolist() == ["A", "A"]


@pytest.mark.slow
def test_cli_id_and_time_columns_name_them_for_history(tmp_path: Path) -> None:
    src = tmp_path / "export.csv"
    src.write_text("Hospital no,Drawn,b12\nA,2026-03-01,400 ng/L\nA,2026-09-01,250 ng/L\n")
    out = tmp_path / "out.csv"
    done = _score(str(src), "--history", "--id-col", "Hospital no", "--time-col", "Drawn",
                  "-o", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "B12_SIGNIFICANT_FALL" in pd.read_csv(out, dtype=str)["b12labs_codes"].iloc[1]
    bad = _score(str(src), "--history", "--id-col", "nope", "-o", str(out))
    assert bad.returncode != 0 and "--id-col 'nope' is not a column" in bad.stderr


def test_the_bundled_serial_example_shows_each_kind_of_serial_finding() -> None:
    # examples/serial_export.csv is the README's `score serial_export.csv --history` input
    from pathlib import Path

    import pandas as pd

    from b12labs.batch import score_frame

    path = Path(__file__).resolve().parents[2] / "examples" / "serial_export.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    codes = ";".join(score_frame(df, history=True)["b12labs_codes"].astype(str))
    for code in ("B12_SIGNIFICANT_FALL", "NO_RESPONSE_TO_TREATMENT", "PREVIOUS_DEFICIENCY",
                 "RETEST_TOO_SOON", "HAEMATOLOGICAL_RESPONSE", "NEURO_RECOVERY_SLOWER"):
        assert code in codes
