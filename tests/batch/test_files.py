"""`b12labs score` end to end, through real processes: formats, streaming, errors, nothing lost."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests._paths import REPO

pytestmark = pytest.mark.slow


def score(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "b12labs", "score", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


WIDE = [
    ["id", "B12 (pg/mL)", "mma", "mma_unit", "mcv", "hb", "hb_unit", "age", "sex", "symptoms"],
    ["007", "150", "", "", "104", "9.5", "g/dL", "70", "F", "paresthesia"],
    ["008", "250", "0.62", "umol/L", "", "", "", "50", "M", ""],
    ["009", "hemolysed", "250", "nmol/L", "90", "", "", "", "", ""],
    ["010", "<100", "", "", "", "130", "xyz", "40", "U", ""],
    ["011", "400", "", "", "", "", "", "", "", "headache"],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_wide_csv_every_row_back_in_order_ids_as_text(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", WIDE)
    out = score(str(src), "-o", str(tmp_path / "out.csv"))
    assert out.returncode == 0, out.stderr
    df = read(tmp_path / "out.csv")
    assert list(df["id"]) == ["007", "008", "009", "010", "011"]
    assert list(df.columns[:10]) == WIDE[0]
    assert list(df["b12labs_status"]) == [
        "deficient",
        "probable",
        "unlikely",
        "deficient",
        "unlikely",
    ]
    errors = list(df["b12labs_error"])
    assert errors[0] == "" and errors[1] == ""
    assert "B12 (pg/mL)='hemolysed': not a number" in errors[2]
    assert "hb_unit" not in errors[3] and "unit 'xyz'" in errors[3]
    assert "headache" in errors[4]
    assert "scored 5 rows" in out.stderr and "rows with errors: 3" in out.stderr
    assert float(df["b12_pmol_l"][0]) == pytest.approx(110.67, abs=0.01)


def test_streaming_chunks_give_the_same_output(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", WIDE)
    assert score(str(src), "-o", str(tmp_path / "a.csv")).returncode == 0
    assert score(str(src), "-o", str(tmp_path / "b.csv"), "--chunksize", "2").returncode == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert score(str(src), "-o", str(tmp_path / "c.csv"), "--threads", "1").returncode == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "c.csv").read_text()


def test_gzip_bom_latin1_and_decimal_comma(tmp_path: Path) -> None:
    gz = tmp_path / "in.csv.gz"
    with gzip.open(gz, "wt", newline="", encoding="utf-8") as fh:
        fh.write("\ufeffid,b12,b12_unit\n1,150,pg/mL\n")
    assert score(str(gz), "-o", str(tmp_path / "gz.csv")).returncode == 0
    assert read(tmp_path / "gz.csv")["id"].tolist() == ["1"]
    latin = write_csv(
        tmp_path / "latin.csv",
        [["id", "b12", "b12_unit", "note"], ["1", "150", "pg/mL", "hémolysé"]],
        encoding="latin-1",
    )
    bad = score(str(latin), "-o", str(tmp_path / "l.csv"))
    assert bad.returncode == 2 and "--encoding" in bad.stderr
    ok = score(str(latin), "-o", str(tmp_path / "l.csv"), "--encoding", "latin-1")
    assert ok.returncode == 0 and read(tmp_path / "l.csv")["note"].tolist() == ["hémolysé"]
    comma = tmp_path / "comma.csv"
    comma.write_text("id;folate;folate_unit\n1;3,5;ng/mL\n", encoding="utf-8")
    out = score(str(comma), "-o", str(tmp_path / "c.csv"), "--sep", ";", "--decimal", ",")
    assert out.returncode == 0, out.stderr
    assert float(read(tmp_path / "c.csv")["folate_nmol_l"][0]) == pytest.approx(7.93, abs=0.01)
    score(str(comma), "-o", str(tmp_path / "c2.csv"), "--sep", ";")
    assert "decimal comma" in read(tmp_path / "c2.csv")["b12labs_error"][0]


def test_parquet_jsonl_excel_and_stdout(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", WIDE)
    assert score(str(src), "-o", str(tmp_path / "out.parquet")).returncode == 0
    pq = pd.read_parquet(tmp_path / "out.parquet")
    assert pq["id"].tolist()[0] == "007" and len(pq) == 5
    assert score(
        str(tmp_path / "out.parquet"),
        "-o",
        str(tmp_path / "again.jsonl"),
        "--map",
        "b12=b12",
        "--unit",
        "b12=pmol/L",
    ).returncode in (0, 2)
    assert score(str(src), "-o", str(tmp_path / "out.jsonl")).returncode == 0
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[1])["b12labs_status"] == "probable"
    xlsx = tmp_path / "in.xlsx"
    pd.DataFrame(WIDE[1:], columns=WIDE[0]).to_excel(xlsx, index=False)
    assert score(str(xlsx), "-o", str(tmp_path / "x.csv")).returncode == 0
    assert read(tmp_path / "x.csv")["b12labs_status"].tolist()[0] == "deficient"
    out = score(str(src), "-o", "-", "--quiet")
    assert out.returncode == 0 and out.stdout.count("\n") == 6


def test_refuses_to_overwrite_its_input_and_leaves_no_partial_file(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", WIDE)
    out = score(str(src), "-o", str(src))
    assert out.returncode == 2 and "refusing to overwrite" in out.stderr
    # a file that breaks mid-way: the output must not appear, nor a temporary file
    broken = tmp_path / "broken.csv"
    # invalid UTF-8 after the first chunks: no reader can recover it, so the run is refused
    broken.write_bytes(b"id,b12,b12_unit\n" + b"1,150,pg/mL\n" * 50 + b"2,\xff\xfe150,pg/mL\n")
    out = score(str(broken), "-o", str(tmp_path / "never.csv"), "--chunksize", "10")
    assert out.returncode != 0
    assert not (tmp_path / "never.csv").exists()
    assert not list(tmp_path.glob(".never.csv.*"))


def test_header_unit_contradicting_the_unit_column_is_flagged_per_row(tmp_path: Path) -> None:
    rows = [
        ["id", "B12 (pg/mL)", "b12_unit"],
        ["1", "150", "pmol/L"],
        ["2", "150", "pg/mL"],
        ["3", "150", ""],
    ]
    src = write_csv(tmp_path / "in.csv", rows)
    out = score(str(src), "-o", str(tmp_path / "out.csv"))
    assert out.returncode == 0, out.stderr
    df = read(tmp_path / "out.csv")
    assert "b12_unit contradicts the header unit pg/mL" in df["b12labs_error"][0]
    assert df["b12_pmol_l"][0] == ""  # not used: the unit is ambiguous
    assert df["b12labs_status"].tolist() == ["not_assessed", "deficient", "deficient"]
    assert df["b12labs_error"].tolist()[1:] == ["", ""]


def test_dry_run_prints_the_mapping_and_scores_nothing(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", WIDE)
    out = score(str(src), "--dry-run")
    assert out.returncode == 0
    assert (
        "'B12 (pg/mL)'" in out.stdout
        and "-> b12" in out.stdout
        and "unit pg/mL (from the header)" in out.stdout
    )
    assert "passed through untouched: 'id'" in out.stdout
    assert not (tmp_path / "in.b12labs.csv").exists()


@pytest.mark.parametrize(
    ("rows", "args", "message"),
    [
        ([["id", "b12"], ["1", "150"]], [], "never guessed"),
        ([["id", "b12", "b12"], ["1", "150", "160"]], [], "duplicated column"),
        (
            [["id", "B12 (pg/mL)", "b12_unit"], ["1", "150", "pmol/L"]],
            ["--unit", "b12=pmol/L"],
            "contradicts",
        ),
        ([["id", "name"], ["1", "x"]], [], "no analyte column"),
        ([["id", "b12"], ["1", "150 pg/mL"]], ["--map", "nosuch=b12"], "not in the input"),
        ([["id", "b12"], ["1", "150 pg/mL"]], ["--unit", "b12=fL"], "wrong dimension"),
        ([["id", "b12"], ["1", "150 pg/mL"]], ["--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_input_that_cannot_be_scored_is_refused_before_scoring(
    tmp_path: Path, rows: list[list[str]], args: list[str], message: str
) -> None:
    src = write_csv(tmp_path / "in.csv", rows)
    out = score(str(src), "-o", str(tmp_path / "out.csv"), *args)
    assert out.returncode == 2, out.stdout
    assert message in out.stderr
    assert not (tmp_path / "out.csv").exists()


LONG = [
    ["patient_id", "collected_at", "test", "value", "unit", "ref_low", "ref_high"],
    ["P1", "2024-01-01", "2132-9", "250", "pg/mL", "", ""],
    ["P1", "2024-01-20", "13964-2", "450", "nmol/L", "0", "378"],
    ["P1", "2024-01-21", "99999-9", "1", "mg/L", "", ""],
    ["P1", "2024-08-01", "2132-9", "900", "pg/mL", "", ""],
    ["P2", "2024-02-01", "718-7", "hemolysed", "g/dL", "", ""],
    ["P2", "2024-02-01", "Vitamin B12", "120", "pmol/L", "", ""],
]


def test_long_export_episodes_and_rejects(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "long.csv", LONG)
    out = score(str(src), "-o", str(tmp_path / "ep.csv"))
    assert out.returncode == 0, out.stderr
    ep = read(tmp_path / "ep.csv")
    assert ep[["patient_id", "episode_start"]].values.tolist() == [
        ["P1", "2024-01-01T00:00:00Z"],
        ["P1", "2024-08-01T00:00:00Z"],
        ["P2", "2024-02-01T00:00:00Z"],
    ]
    # P1's earlier episode was probable (raised MMA) and no treatment is recorded: the normal
    # B12 later is not reassuring (RULES v2 §8 PREVIOUS_DEFICIENCY), and it rose beyond the RCV
    assert ep["b12labs_status"].tolist() == ["probable", "indeterminate", "deficient"]
    assert {"PREVIOUS_DEFICIENCY", "B12_SIGNIFICANT_RISE"} <= set(ep["b12labs_codes"][1].split(";"))
    assert ep["mma_ref_high"].tolist()[0] == "378"
    rej = read(tmp_path / "ep.rejects.csv")
    assert rej["b12labs_row"].tolist() == ["3", "5"]
    assert "unknown test '99999-9'" in rej["b12labs_reject_reason"][0]
    assert "not a number" in rej["b12labs_reject_reason"][1]
    assert rej["value"].tolist() == ["1", "hemolysed"]  # the original row is kept


def test_unsorted_long_export_larger_than_a_chunk_is_refused(tmp_path: Path) -> None:
    rows = [LONG[0], LONG[1], LONG[5], LONG[2], LONG[6]]  # P1, P2, P1 again
    src = write_csv(tmp_path / "long.csv", rows)
    out = score(str(src), "-o", str(tmp_path / "ep.csv"), "--chunksize", "1")
    assert out.returncode == 2 and "not sorted by patient" in out.stderr
    assert not (tmp_path / "ep.csv").exists()
    ok = score(str(src), "-o", str(tmp_path / "ep.csv"))  # fits in one chunk: fine
    assert ok.returncode == 0, ok.stderr


def test_report_is_a_self_contained_page(tmp_path: Path) -> None:
    out = score(
        "examples/export.csv", "-o", str(tmp_path / "o.csv"), "--report", str(tmp_path / "r.html")
    )
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "r.html").read_text()
    assert (
        "<img" in html
        and "deficient" in html
        and "http://" not in html.replace("http://www.w3.org", "")
    )
