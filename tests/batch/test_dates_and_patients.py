"""Batch dates are never guessed, and long exports never pool or split a patient silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from b12labs.batch import score_frame, score_long
from b12labs.batch._long import LongScorer, detect_long_columns, iter_long
from b12labs.errors import InputFormatError
from b12labs.profiles import load_profile


def _wide(dob: list[str], when: list[str], **kw: object) -> pd.DataFrame:
    df = pd.DataFrame({"b12": ["150 pg/mL"] * len(dob), "date_of_birth": dob, "collected_at": when})
    return score_frame(df, **kw)  # type: ignore[arg-type]


def test_day_month_order_is_never_guessed() -> None:
    # 01/02/1959 is 1 February or 2 January: without a format it is an error, and whether
    # another row (13/01/1959) could only be day-first changes nothing
    out = _wide(["01/02/1959", "13/01/1959"], ["2026-01-05", "2026-01-05"])
    errors = out["b12labs_error"].astype(str).tolist()
    assert all("ISO 8601" in e and "date_format" in e for e in errors)
    alone = _wide(["01/02/1959"], ["2026-01-05"])
    assert str(alone["b12labs_error"].iloc[0]) == errors[0]


def test_an_explicit_format_reads_every_row_the_same_way() -> None:
    out = _wide(["01/02/1959", "13/01/1959"], ["05/01/2026", "05/01/2026"], date_format="%d/%m/%Y")
    assert out["b12labs_error"].astype(str).str.strip().isin(["", "nan", "<NA>"]).all()
    # born 1 Feb 1959, sampled 5 Jan 2026: 66 years (the older MMA limit), not 67 or 65

    us = _wide(["02/01/1959"], ["01/05/2026"], date_format="%m/%d/%Y")
    assert us["b12labs_error"].astype(str).str.strip().isin(["", "nan", "<NA>"]).all()


@pytest.mark.parametrize(("dob", "when", "why"), [
    ("2090-01-01", "2026-01-05", "in the future"),
    ("1959-02-30", "2026-01-05", "not a date"),
    ("1990-01-01", "1980-01-01", "after the collection date"),
    ("1959-01-01", "soon", "not a date"),
])
def test_an_unusable_date_is_an_error_for_its_row(dob: str, when: str, why: str) -> None:
    out = _wide([dob, "1959-01-01"], [when, "2026-01-05"])
    assert why in str(out["b12labs_error"].iloc[0])
    assert str(out["b12labs_error"].iloc[1]) in ("", "nan", "<NA>")
    assert out["b12labs_status"].iloc[0] == "deficient"  # the row is still scored


def _long(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": [p for p, _ in rows], "collected_at": [t for _, t in rows],
                         "test": ["2132-9"] * len(rows), "value": ["150"] * len(rows),
                         "unit": ["pg/mL"] * len(rows)})


def test_rows_without_a_patient_id_are_rejected_not_pooled() -> None:
    episodes, rejects = score_long(_long([("", "2026-01-01"), (" ", "2026-01-02"), ("P1", "2026-01-01")]))
    assert episodes["patient_id"].tolist() == ["P1"]
    assert rejects["b12labs_row"].tolist() == [1, 2]
    assert rejects["b12labs_reject_reason"].str.contains("no patient id").all()


def test_long_collection_times_are_iso_unless_a_format_is_given() -> None:
    df = _long([("P1", "01/02/2026"), ("P2", "2026-02-01")])
    episodes, rejects = score_long(df)
    assert episodes["patient_id"].tolist() == ["P2"]
    assert "ISO 8601" in rejects["b12labs_reject_reason"].iloc[0]
    episodes, rejects = score_long(df, date_format="%d/%m/%Y")
    assert episodes["patient_id"].tolist() == ["P1"]
    assert episodes["episode_start"].iloc[0].startswith("2026-02-01")


@pytest.mark.parametrize("chunksize", [1, 2])
def test_an_unsorted_export_is_refused_at_every_chunk_boundary(chunksize: int) -> None:
    df = _long([("P1", "2026-01-01"), ("P2", "2026-01-01"), ("P1", "2026-06-01")])
    roles = detect_long_columns(list(df.columns), {})
    scorer = LongScorer(roles=roles, profile=load_profile("nice-ng239-2024"))
    chunks = [df.iloc[i:i + chunksize] for i in range(0, len(df), chunksize)]
    with pytest.raises(InputFormatError, match="not sorted by patient"):
        list(iter_long(chunks, scorer))


def test_cli_refuses_an_unsorted_export_and_leaves_no_output(tmp_path: Path) -> None:
    src = tmp_path / "long.csv"
    _long([("P1", "2026-01-01"), ("P2", "2026-01-01"), ("P1", "2026-06-01")]).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-m", "b12labs", "score", str(src), "-o", str(out), "--chunksize", "2",
                           "--quiet"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "not sorted by patient" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_the_format_decides_the_age_and_so_the_mma_limit() -> None:
    # 6 Feb 1961 -> 1 Mar 2026 is 65 years (MMA 0.43 below the 0.46 limit from 65);
    # read month-first it would be 2 Jun 1961 -> 3 Jan 2026, 64 years (0.43 above 0.40)
    df = pd.DataFrame({"b12": ["250 pg/mL"] * 2, "mma": ["0.43 umol/L"] * 2,
                       "date_of_birth": ["06/02/1961", "1961-02-06"], "collected_at": ["01/03/2026", "2026-03-01"]})
    day_first = score_frame(df.iloc[:1], date_format="%d/%m/%Y")
    iso = score_frame(df.iloc[1:])
    for out in (day_first, iso):
        assert "MMA_ELEVATED" not in str(out["b12labs_codes"].iloc[0])
    month_first = score_frame(df.iloc[:1], date_format="%m/%d/%Y")
    assert "MMA_ELEVATED" in str(month_first["b12labs_codes"].iloc[0])
