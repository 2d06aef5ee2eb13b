"""Tests of the streaming cohort summary and the self-contained HTML report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from b12labs.errors import InputFormatError
from b12labs.report import STATUSES, CohortSummary, render_html, render_plot_pngs

BANDS = {
    "deficient below": 133.0,
    "indeterminate up to": 258.0,
    "upper limit": 674.0,
}


def scored_frame(n: int, seed: int = 1) -> pd.DataFrame:
    """Synthetic scorer output, including a patient identifier column the report must ignore."""
    rng = np.random.default_rng(seed)
    b12 = rng.lognormal(np.log(320), 0.6, n)
    b12[rng.random(n) < 0.05] = np.nan
    b12[rng.random(n) < 0.01] = 2500.0  # overflow
    mma = np.exp(np.log(0.25) + 0.8 * np.log(300 / np.nan_to_num(b12, nan=300.0)))
    mma[rng.random(n) < 0.4] = np.nan
    status = np.where(
        np.isnan(b12),
        "not_assessed",
        np.where(b12 < 133, "deficient", np.where(b12 < 258, "indeterminate", "unlikely")),
    ).astype(object)
    status[rng.random(n) < 0.02] = "uninterpretable"
    codes = np.where(b12 < 133, "B12_LOW;MMA_HIGH", np.where(b12 < 258, "B12_BORDERLINE", ""))
    severity = np.where(b12 < 133, "critical", np.where(b12 < 258, "warning", ""))
    error = np.where(status == "uninterpretable", "unit not recognised", "")
    return pd.DataFrame(
        {
            "patient_id": [f"PATIENT-{i:06d}" for i in range(n)],
            "b12labs_status": status,
            "b12labs_codes": codes,
            "b12labs_max_severity": severity,
            "b12labs_error": error,
            "b12labs_profile": "test-profile",
            "b12_pmol_l": b12,
            "mma_umol_l": mma,
            "homocysteine_umol_l": np.nan,
            "mcv_fl": rng.normal(90, 5, n),
            "hb_g_l": rng.normal(135, 12, n),
            "ferritin_ug_l": np.nan,
            "folate_nmol_l": rng.normal(20, 6, n),
        }
    )


def summarise(*chunks: pd.DataFrame, **kwargs: int) -> CohortSummary:
    summary = CohortSummary(**kwargs)
    for chunk in chunks:
        summary.update(chunk)
    return summary


# ----------------------------------------------------------------------------- summary


def test_chunks_equal_one_frame() -> None:
    frame = scored_frame(5000)
    whole = summarise(frame, sample_size=500)
    parts = summarise(frame.iloc[:1234], frame.iloc[1234:], sample_size=500)
    assert parts.to_dict() == whole.to_dict()
    assert parts.hist_counts == whole.hist_counts
    assert parts.hist_overflow == whole.hist_overflow > 0
    # the reservoir does not depend on the chunking either
    pd.testing.assert_frame_equal(parts.sample(), whole.sample())


def test_counts_are_exact() -> None:
    frame = scored_frame(3000)
    s = summarise(frame)
    assert s.rows == 3000
    assert sum(s.status_counts.values()) == 3000
    expected = frame["b12labs_status"].value_counts()
    for status, n in expected.items():
        assert s.status_counts[str(status)] == n
    assert s.error_rows == int((frame["b12labs_error"] != "").sum())
    assert s.severity_counts["critical"] == int((frame["b12labs_max_severity"] == "critical").sum())
    assert s.severity_counts["none"] == int((frame["b12labs_max_severity"] == "").sum())
    assert s.code_counts["B12_LOW"] == int((frame["b12_pmol_l"] < 133).sum())
    assert s.code_counts["MMA_HIGH"] == s.code_counts["B12_LOW"]
    assert s.profile_counts == {"test-profile": 3000}

    b12 = frame["b12_pmol_l"].dropna().to_numpy()
    assert s.b12_present == b12.size
    in_range = b12[b12 < 1500]
    np.testing.assert_array_equal(
        s.hist_counts, np.histogram(in_range, bins=60, range=(0, 1500))[0]
    )
    assert s.hist_overflow == int((b12 >= 1500).sum())
    assert sum(s.hist_counts) + s.hist_overflow + s.hist_underflow == s.b12_present
    json.dumps(s.to_dict())  # JSON-friendly


def test_histogram_bin_edges_are_half_open() -> None:
    s = CohortSummary()
    s.update(
        pd.DataFrame(
            {"b12labs_status": ["unlikely"] * 5, "b12_pmol_l": [-1.0, 0.0, 24.999, 25.0, 1500.0]}
        )
    )
    assert s.hist_underflow == 1
    assert s.hist_overflow == 1
    assert s.hist_counts[0] == 2
    assert s.hist_counts[1] == 1


def test_top_codes_and_duplicates_within_row() -> None:
    s = CohortSummary()
    s.update(
        pd.DataFrame(
            {
                "b12labs_status": ["deficient", "probable", "unlikely", "unlikely"],
                "b12labs_codes": ["A;B;A", " B ; C", "", None],
            }
        )
    )
    assert s.code_counts == {"A": 1, "B": 2, "C": 1}
    assert s.top_codes(2) == [("B", 2), ("A", 1)]
    assert s.top_codes(0) == []


def test_empty_frame() -> None:
    s = CohortSummary()
    s.update(pd.DataFrame())
    s.update(scored_frame(10).iloc[0:0])
    d = s.to_dict()
    assert d["rows"] == 0
    assert all(v == 0 for v in d["status_counts"].values())
    assert all(v is None for v in d["status_percent"].values())
    assert sum(d["b12_histogram"]["counts"]) == 0
    assert s.top_codes(5) == []
    assert len(s.sample()) == 0
    json.dumps(d)


def test_missing_status_column_rejected() -> None:
    with pytest.raises(InputFormatError, match="b12labs_status"):
        CohortSummary().update(pd.DataFrame({"b12_pmol_l": [200.0]}))


def test_nan_only_columns() -> None:
    n = 50
    frame = pd.DataFrame(
        {
            "b12labs_status": ["not_assessed"] * n,
            "b12labs_codes": [""] * n,
            "b12labs_max_severity": [None] * n,
            "b12labs_error": [np.nan] * n,
            "b12_pmol_l": [np.nan] * n,
            "mma_umol_l": [np.nan] * n,
        }
    )
    s = summarise(frame)
    assert s.rows == n
    assert s.status_counts["not_assessed"] == n
    assert s.error_rows == 0
    assert s.severity_counts["none"] == n
    assert s.b12_present == 0
    assert sum(s.hist_counts) == 0
    assert s.paired_rows == 0
    assert s.code_counts == {}


def test_reservoir_bounded_and_reproducible() -> None:
    frame = scored_frame(4000)
    paired = int((frame["b12_pmol_l"].notna() & frame["mma_umol_l"].notna()).sum())
    s = summarise(*(frame.iloc[i : i + 700] for i in range(0, 4000, 700)), sample_size=100)
    sample = s.sample()
    assert len(sample) == 100
    assert s.paired_rows == paired
    assert list(sample.columns) == ["b12_pmol_l", "mma_umol_l", "b12labs_status"]
    assert sample.notna().all().all()
    assert set(sample["b12labs_status"]) <= set(STATUSES)
    # same seed → same sample; other seed → (almost surely) another one
    again = summarise(frame, sample_size=100)
    pd.testing.assert_frame_equal(sample, again.sample())
    other = summarise(frame, sample_size=100, seed=7)
    assert not other.sample().equals(sample)
    # the sample holds real paired rows of the input
    pairs = set(zip(frame["b12_pmol_l"], frame["mma_umol_l"], strict=True))
    assert all(
        (b, m) in pairs for b, m in zip(sample["b12_pmol_l"], sample["mma_umol_l"], strict=True)
    )


def test_reservoir_is_roughly_uniform() -> None:
    # each of 1000 rows should be kept with probability 0.1
    n, k, trials = 1000, 100, 200
    frame = pd.DataFrame(
        {
            "b12labs_status": ["unlikely"] * n,
            "b12_pmol_l": np.arange(n, dtype=float),
            "mma_umol_l": np.ones(n),
        }
    )
    hits = np.zeros(n)
    for seed in range(trials):
        s = summarise(frame.iloc[:300], frame.iloc[300:], sample_size=k, seed=seed)
        hits[s.sample()["b12_pmol_l"].to_numpy().astype(int)] += 1
    first, last = hits[: n // 2].mean() / trials, hits[n // 2 :].mean() / trials
    assert abs(first - 0.1) < 0.01
    assert abs(last - 0.1) < 0.01


def test_merge_matches_sequential_counts() -> None:
    frame = scored_frame(3000)
    a = summarise(frame.iloc[:1000], sample_size=200)
    b = summarise(frame.iloc[1000:], sample_size=200, seed=3)
    a.merge(b)
    whole = summarise(frame, sample_size=200)
    da, dw = a.to_dict(), whole.to_dict()
    assert da == dw
    assert len(a.sample()) == 200
    with pytest.raises(ValueError):
        a.merge(CohortSummary(hist_bins=10))


# ----------------------------------------------------------------------------- HTML


def _assert_self_contained(text: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "<link" not in text.lower()
    assert "<script" not in text.lower()


def test_html_report(tmp_path: Path) -> None:
    frame = scored_frame(2000)
    s = summarise(frame.iloc[:900], frame.iloc[900:])
    out = tmp_path / "report.html"
    render_html(
        s,
        out,
        title="Cohort <test> & co",
        bands={**BANDS, "MMA upper limit": 0.28},
        profile_id="test-profile",
        extra={"elapsed": "1.2 s", "rows/s": "1,667", "version": "0.1.0"},
    )
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert text.count("<img") == 4
    assert "data:image/png;base64," in text
    assert "Cohort &lt;test&gt; &amp; co" in text
    assert "<test>" not in text
    for status in STATUSES:
        assert status in text
        assert f"{s.status_counts[status]:,}" in text
    assert "2,000" in text
    assert "deficient below" in text
    assert "rows/s" in text and "1,667" in text
    assert "Decision support, not a diagnosis." in text
    assert "PATIENT-" not in text  # no identifiers
    assert not (tmp_path / "report.html.tmp").exists()


def test_html_escapes_data_text(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "b12labs_status": ["<script>alert(1)</script>", "unlikely"],
            "b12labs_codes": ["X<&>$Y$", ""],
            "b12_pmol_l": [100.0, 300.0],
            "mma_umol_l": [0.5, 0.2],
        }
    )
    s = summarise(frame)
    out = tmp_path / "r.html"
    render_html(s, out, title="t", extra={"<k>": "<v>"})
    text = out.read_text(encoding="utf-8")
    assert "<script" not in text
    assert "&lt;script&gt;" in text
    assert "&lt;k&gt;" in text and "&lt;v&gt;" in text


def test_html_empty_cohort(tmp_path: Path) -> None:
    s = CohortSummary()
    s.update(pd.DataFrame())
    out = tmp_path / "empty.html"
    render_html(s, out, title="Empty", bands=BANDS)
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert "<img" not in text
    assert "No rows in this cohort." in text
    assert "No B12 values" in text
    assert "No findings reported." in text
    for status in STATUSES:
        assert status in text
    assert "Decision support, not a diagnosis." in text


def test_html_nan_only_values(tmp_path: Path) -> None:
    frame = scored_frame(200)
    frame["b12_pmol_l"] = np.nan
    frame["mma_umol_l"] = np.nan
    s = summarise(frame)
    out = tmp_path / "nan.html"
    render_html(s, out, title="NaN", bands=BANDS)
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert text.count("<img") == 2  # status and findings only
    assert "No B12 values in this cohort." in text
    assert "No rows with both a B12 and an MMA value." in text


def test_plot_pngs() -> None:
    s = summarise(scored_frame(500))
    pngs = render_plot_pngs(s, bands=BANDS, extra={"MMA limit": "0.28 µmol/L"})
    assert set(pngs) == {"status", "b12_histogram", "mma_vs_b12", "findings"}
    assert all(p.startswith(b"\x89PNG") for p in pngs.values())


def test_no_pyplot_state_leak() -> None:
    s = summarise(scored_frame(300))
    before = set(sys.modules)
    render_plot_pngs(s, bands=BANDS)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and "matplotlib.pyplot" not in before:
        pytest.fail("render imported pyplot")
    if pyplot is not None:
        assert pyplot.get_fignums() == []


def test_missing_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    s = summarise(scored_frame(50))  # the summary itself needs no matplotlib
    with pytest.raises(ImportError, match=re.escape("pip install 'b12labs[report]'")):
        render_html(s, tmp_path / "x.html", title="x")
    assert not (tmp_path / "x.html").exists()
