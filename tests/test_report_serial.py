"""The cohort report's "Results over time" section: the counting (CohortSummary) and the page
a real `b12labs score --report` run writes for a long export."""

from __future__ import annotations

import csv
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from b12labs.report import SERIAL_CODES, CohortSummary, render_html, render_plot_pngs
from tests._paths import REPO

NAN = np.nan


def episodes() -> pd.DataFrame:
    """Scorer output for six episodes (no identifier is read; one is present to prove it)."""
    return pd.DataFrame(
        {
            "patient_id": ["SECRET-1", "SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4", "SECRET-5"],
            "b12labs_status": ["unlikely"] * 3 + ["not_assessed", "not_assessed", "deficient"],
            "b12labs_codes": [
                "B12_DEFICIENCY_UNLIKELY",
                "B12_DEFICIENCY_UNLIKELY;RETEST_TOO_SOON",
                "RETEST_TOO_SOON;B12_SIGNIFICANT_RISE;RETEST_TOO_SOON",  # a repeat counts once
                "RECENT_B12_TREATMENT;HAEMATOLOGICAL_RESPONSE",
                "ANAEMIA;NO_RESPONSE_TO_TREATMENT;REVIEW_DUE",
                "B12_DEFICIENT",
            ],
            "b12_pmol_l": [300.0, 310.0, 700.0, NAN, NAN, 90.0],
            "folate_nmol_l": [NAN, NAN, 20.0, NAN, NAN, 15.0],
            "ferritin_ug_l": [NAN, 40.0, NAN, NAN, NAN, NAN],
            "hb_g_l": [NAN, NAN, NAN, 120.0, 102.0, NAN],
        }
    )


def test_results_over_time_counts() -> None:
    s = CohortSummary(long_format=True)
    s.update(episodes())
    rot = s.results_over_time()
    assert list(rot["codes"]) == list(SERIAL_CODES)  # every code, zeros included, in order
    assert rot["episodes"] == 6
    assert rot["long_format"] is True
    assert rot["codes"]["RETEST_TOO_SOON"] == 2
    assert rot["codes"]["B12_SIGNIFICANT_RISE"] == 1
    assert rot["codes"]["HAEMATOLOGICAL_RESPONSE"] == 1
    assert rot["codes"]["NO_RESPONSE_TO_TREATMENT"] == 1
    assert rot["codes"]["REVIEW_DUE"] == 1
    assert rot["codes"]["B12_ON_REPLACEMENT"] == 0
    assert rot["episodes_with_any"] == 4  # episodes 2, 3, 4, 5
    assert rot["retest_by_analyte"] == {
        "B12": {"measured": 4, "with_retest": 2, "percent": 50.0},
        "folate": {"measured": 2, "with_retest": 1, "percent": 50.0},
        "ferritin": {"measured": 1, "with_retest": 1, "percent": 100.0},
    }
    assert s.has_results_over_time
    json.dumps(s.to_dict()["results_over_time"])


def test_results_over_time_chunks_and_merge_match_one_frame() -> None:
    frame = episodes()
    whole = CohortSummary()
    whole.update(frame)
    chunked = CohortSummary()
    for i in range(len(frame)):
        chunked.update(frame.iloc[i : i + 1])
    a, b = CohortSummary(), CohortSummary(long_format=True)
    a.update(frame.iloc[:3])
    b.update(frame.iloc[3:])
    a.merge(b)
    assert chunked.results_over_time() == whole.results_over_time()
    assert a.long_format  # either part being long makes the merge long
    assert {k: v for k, v in a.results_over_time().items() if k != "long_format"} == {
        k: v for k, v in whole.results_over_time().items() if k != "long_format"
    }


def test_results_over_time_with_a_non_unique_index() -> None:
    frame = episodes()
    frame.index = [0, 0, 0, 1, 1, 1]
    s = CohortSummary()
    s.update(frame)
    assert s.results_over_time()["retest_by_analyte"]["B12"]["with_retest"] == 2


def test_serial_codes_are_the_catalogues() -> None:
    import b12labs.rules  # noqa: F401  (registers the catalogue)
    from b12labs.report import _SERIAL_GROUPS
    from b12labs.rules._registry import CATALOGUE

    assert set(SERIAL_CODES) == {r.code for r in CATALOGUE if r.area == "serial"}
    assert [c for _, codes, _ in _SERIAL_GROUPS for c in codes] == list(SERIAL_CODES)


def test_no_section_without_serial_findings_in_a_wide_cohort(tmp_path: Path) -> None:
    frame = episodes()
    frame["b12labs_codes"] = "B12_DEFICIENCY_UNLIKELY"
    s = CohortSummary()
    s.update(frame)
    assert not s.has_results_over_time
    assert "results_over_time" not in render_plot_pngs(s)
    render_html(s, tmp_path / "r.html", title="t")
    assert "Results over time" not in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_section_for_a_long_export_without_serial_findings(tmp_path: Path) -> None:
    frame = episodes()
    frame["b12labs_codes"] = ""
    s = CohortSummary(long_format=True)
    s.update(frame)
    render_html(s, tmp_path / "r.html", title="t")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Results over time" in text
    assert "No results-over-time findings in these episodes." in text
    assert "results_over_time" not in render_plot_pngs(s)


def test_section_for_serial_findings_in_a_wide_cohort(tmp_path: Path) -> None:
    s = CohortSummary()
    s.update(episodes())
    assert "results_over_time" in render_plot_pngs(s)
    render_html(s, tmp_path / "r.html", title="t")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Results over time" in text
    assert "SECRET-" not in text


# ------------------------------------------------------------------ end to end, real CLI

HEADER = ["patient_id", "collected_at", "test", "value", "unit", "age", "sex", "b12_treatment",
          "b12_treatment_started"]
LONG = [
    # R1: B12 repeated after 40 days (minimum 56): one episode (90-day window), with the repeat
    ["R1", "2026-01-05", "b12", "300", "pmol/L", "50", "F", "", ""],
    ["R1", "2026-02-14", "b12", "310", "pmol/L", "50", "F", "", ""],
    # R2: B12 and folate, then B12 alone after 45 days: the episode also measured folate
    ["R2", "2026-02-01", "b12", "400", "pmol/L", "60", "M", "", ""],
    ["R2", "2026-02-01", "folate", "20", "nmol/L", "60", "M", "", ""],
    ["R2", "2026-03-18", "b12", "390", "pmol/L", "60", "M", "", ""],
    # R3: B12 repeated after 100 days: two episodes, no repeat finding
    ["R3", "2026-01-01", "b12", "350", "pmol/L", "40", "F", "", ""],
    ["R3", "2026-04-11", "b12", "360", "pmol/L", "40", "F", "", ""],
    # T1: deficient with anaemia, treated, Hb up 25 g/L: response
    ["T1", "2026-01-10", "b12", "90", "pmol/L", "45", "F", "", ""],
    ["T1", "2026-01-10", "hb", "95", "g/L", "45", "F", "", ""],
    ["T1", "2026-04-20", "hb", "120", "g/L", "45", "F", "injection", "2026-01-15"],
    # N1: deficient with anaemia, treated, Hb up 2 g/L after 14 weeks: no response
    ["N1", "2026-01-10", "b12", "95", "pmol/L", "70", "M", "", ""],
    ["N1", "2026-01-10", "hb", "100", "g/L", "70", "M", "", ""],
    ["N1", "2026-04-20", "hb", "102", "g/L", "70", "M", "injection", "2026-01-15"],
    # M1: deficient, then B12 measured on injections
    ["M1", "2026-01-10", "b12", "90", "pmol/L", "55", "F", "", ""],
    ["M1", "2026-04-20", "b12", "500", "pmol/L", "55", "F", "injection", "2026-01-15"],
]


def _section(text: str) -> str:
    start = text.index('<section id="results-over-time">')
    return text[start : text.index("</section>", start)]


def _rows(section: str) -> dict[str, list[str]]:
    """Table rows of the section keyed by their first cell, as plain text cells."""
    out: dict[str, list[str]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        if cells:
            out[cells[0]] = cells[1:]
    return out


@pytest.mark.slow
def test_cli_report_counts_results_over_time(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([HEADER, *LONG])
    out = subprocess.run(
        [sys.executable, "-m", "b12labs", "score", str(src), "-o", str(tmp_path / "out.csv"),
         "--report", str(tmp_path / "rep.html")],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    scored = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert len(scored) == 10  # R1 1, R2 1, R3 2, T1 2, N1 2, M1 2 episodes
    text = (tmp_path / "rep.html").read_text(encoding="utf-8")
    rows = _rows(_section(text))
    # [what it counts, episodes, % of 10 episodes]
    assert rows["RETEST_TOO_SOON"][1:] == ["2", "20.0%"]
    assert rows["B12_ON_REPLACEMENT"][1:] == ["1", "10.0%"]
    assert rows["HAEMATOLOGICAL_RESPONSE"][1:] == ["1", "10.0%"]
    assert rows["NO_RESPONSE_TO_TREATMENT"][1:] == ["1", "10.0%"]
    for code in ("REVIEW_DUE", "B12_SIGNIFICANT_FALL", "PREVIOUS_DEFICIENCY", "RESULT_CONFLICT"):
        assert rows[code][1:] == ["0", "0.0%"]
    assert rows["any of these"][1:] == ["5", "50.0%"]
    # [episodes measuring it, with RETEST_TOO_SOON, %]: B12 in 8 episodes (R1, R2, R3 x2, T1,
    # N1, M1 x2); R2's episode also measured folate, so it counts there too (said in the note)
    assert rows["B12"] == ["8", "2", "25.0%"]
    assert rows["folate"] == ["1", "1", "100.0%"]
    assert rows["ferritin"] == ["0", "0", "—"]
    assert rows["any (episodes with RETEST_TOO_SOON)"] == ["10", "2", "20.0%"]
    assert "does not say which analyte was repeated" in text
    assert text.count("<img") == 4  # status, B12 histogram, findings, results over time (no MMA)
    # no patient identifiers or values
    for pid in ("R1", "R2", "R3", "T1", "N1", "M1"):
        assert not re.search(rf"\b{pid}\b", re.sub(r"base64,[^\"]+", "", text))
    assert "2026-0" not in text
