"""Choosing the b12labs output columns: ``columns_out`` / ``--columns`` / ``--no-canonical``."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from b12labs.batch import (
    OUTPUT_COLUMNS,
    VALUE_COLUMNS,
    ScoreOptions,
    score_dask,
    score_file,
    score_frame,
    score_long,
)
from b12labs.errors import InputFormatError
from tests.batch._convert import to_frame
from tests.batch.test_equivalence import _random_panel
from tests.batch.test_files import LONG, WIDE, read, score, write_csv

ALL = [*OUTPUT_COLUMNS, *VALUE_COLUMNS]
NARROW = "status,codes,max_severity,actions,error"
NARROW_FULL = ["b12labs_status", "b12labs_codes", "b12labs_max_severity", "b12labs_actions", "b12labs_error"]


def _wide() -> pd.DataFrame:
    return pd.DataFrame(WIDE[1:], columns=WIDE[0])


@pytest.fixture(scope="module")
def varied() -> pd.DataFrame:
    """Random realistic panels, then the file tests' rows with bad cells and odd units."""
    rng = random.Random(20261202)
    frame = to_frame([_random_panel(rng) for _ in range(1_500)])
    bad = pd.DataFrame({"b12": ["hemolysed", "<100 pg/mL", "250 xyz", "", "-5 pmol/L"]})
    return pd.concat([frame, bad], ignore_index=True).fillna("")


def _added(scored: pd.DataFrame, df: pd.DataFrame) -> list[str]:
    return [str(c) for c in scored.columns[len(df.columns) :]]


def test_default_is_the_complete_output() -> None:
    df = _wide()
    scored = score_frame(df)
    assert list(scored.columns[: len(df.columns)]) == list(df.columns)
    assert _added(scored, df) == ALL


@pytest.mark.parametrize("names", [NARROW, NARROW_FULL, NARROW.split(","), " status , codes,max_severity,actions ,error "])
def test_short_and_full_names_select_the_same_columns(names: object) -> None:
    df = _wide()
    scored = score_frame(df, columns_out=names)  # type: ignore[arg-type]
    assert _added(scored, df) == NARROW_FULL
    assert len(scored) == len(df)
    pd.testing.assert_frame_equal(scored[df.columns], df)


def test_the_order_given_is_kept_and_a_repeat_counts_once() -> None:
    df = _wide()
    scored = score_frame(df, columns_out=["b12_pmol_l", "error", "status", "b12labs_error"])
    assert _added(scored, df) == ["b12_pmol_l", "b12labs_error", "b12labs_status"]


def test_no_canonical_drops_the_value_columns() -> None:
    df = _wide()
    assert _added(score_frame(df, canonical=False), df) == list(OUTPUT_COLUMNS)
    assert _added(score_frame(df, columns_out="status,codes", canonical=False), df) == [
        "b12labs_status",
        "b12labs_codes",
    ]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"columns_out": "status,nonsense"}, "'nonsense'"),
        ({"columns_out": ["b12labs_bogus"]}, "'b12labs_bogus'"),
        ({"columns_out": ""}, "selects no column"),
        ({"columns_out": "b12_pmol_l", "canonical": False}, "--no-canonical"),
    ],
)
def test_a_bad_selection_is_one_coded_line_before_any_scoring(
    kwargs: dict[str, object], needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import b12labs.batch._frame as frame

    def never(*args: object, **kw: object) -> None:
        raise AssertionError("scored before the selection was checked")

    monkeypatch.setattr(frame, "prepare", never)
    with pytest.raises(InputFormatError) as info:
        score_frame(_wide(), **kwargs)  # type: ignore[arg-type]
    assert info.value.code == "option-invalid"
    message = str(info.value)
    assert needle in message and "\n" not in message
    if "nonsense" in needle:
        assert "status, codes, max_severity" in message and "b12_pmol_l" in message


def test_kept_columns_equal_the_default_run(varied: pd.DataFrame) -> None:
    full = score_frame(varied)
    for names in (NARROW_FULL, ["b12labs_codes"], ["b12labs_comment", "b12labs_error_code"], ["b12_pmol_l"]):
        narrow = score_frame(varied, columns_out=names)
        assert len(narrow) == len(varied)
        pd.testing.assert_frame_equal(narrow, full[[*varied.columns, *names]])
    assert (full["b12labs_error"] != "").any()  # the frame has bad cells too


def test_long_format_keeps_the_episode_columns() -> None:
    df = pd.DataFrame(LONG[1:], columns=LONG[0])
    full, full_rejects = score_long(df)
    narrow, rejects = score_long(df, columns_out="status,codes")
    keep = [c for c in full.columns if not c.startswith("b12labs_") and c not in VALUE_COLUMNS]
    assert list(narrow.columns) == [*keep, "b12labs_status", "b12labs_codes"]
    pd.testing.assert_frame_equal(narrow, full[list(narrow.columns)])
    pd.testing.assert_frame_equal(rejects, full_rejects)
    with pytest.raises(InputFormatError, match="'nope'"):
        score_long(df, columns_out="nope")


def test_score_options_validate_and_normalise_the_selection() -> None:
    assert ScoreOptions(columns_out=NARROW).columns_out == tuple(NARROW_FULL)
    assert ScoreOptions().selected == tuple(ALL)
    assert ScoreOptions(canonical=False).selected == OUTPUT_COLUMNS
    with pytest.raises(InputFormatError) as info:
        ScoreOptions(columns_out="status,nope")
    assert info.value.code == "option-invalid"


def test_score_file_csv_parquet_and_header_only(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    src = write_csv(tmp_path / "in.csv", WIDE)
    options = ScoreOptions(columns_out=NARROW, summary=True)
    summary = score_file(src, tmp_path / "out.csv", options)
    out = read(tmp_path / "out.csv")
    assert list(out.columns) == [*WIDE[0], *NARROW_FULL]
    assert out["id"].tolist() == [r[0] for r in WIDE[1:]]
    assert sum(summary.status_counts.values()) == len(WIDE) - 1  # the summary still counts

    score_file(src, tmp_path / "out.parquet", ScoreOptions(columns_out="status,b12_pmol_l"))
    parquet = pd.read_parquet(tmp_path / "out.parquet")
    assert list(parquet.columns) == [*WIDE[0], "b12labs_status", "b12_pmol_l"]
    full = score_frame(_wide())
    assert parquet["b12labs_status"].astype(str).tolist() == full["b12labs_status"].astype(str).tolist()

    empty = write_csv(tmp_path / "empty.csv", [WIDE[0]])
    score_file(empty, tmp_path / "empty.out.csv", ScoreOptions(columns_out=NARROW))
    assert (tmp_path / "empty.out.csv").read_text().splitlines() == [
        ",".join(f'"{c}"' for c in [*WIDE[0], *NARROW_FULL])
    ]


@pytest.mark.slow
def test_cli_columns_no_canonical_and_an_unknown_name(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", WIDE)
    done = score(str(src), "-o", str(tmp_path / "a.csv"), "--columns", NARROW, "--quiet")
    assert done.returncode == 0, done.stderr
    assert list(read(tmp_path / "a.csv").columns) == [*WIDE[0], *NARROW_FULL]

    done = score(str(src), "-o", str(tmp_path / "b.csv"), "--no-canonical", "--quiet")
    assert done.returncode == 0, done.stderr
    assert list(read(tmp_path / "b.csv").columns) == [*WIDE[0], *OUTPUT_COLUMNS]

    done = score(str(src), "-o", str(tmp_path / "c.csv"), "--columns", "status,nope")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "'nope'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "c.csv").exists()


def test_the_docs_example_runs() -> None:
    from tests._paths import REPO

    text = (REPO / "docs" / "batch.md").read_text(encoding="utf-8")
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:] if "columns_out" in b.split("```")[0]]
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/batch.md", "exec"), {})


@pytest.mark.slow
def test_score_dask_honours_the_selection() -> None:
    dd = pytest.importorskip("dask.dataframe")
    df = _wide()
    ddf = dd.from_pandas(df, npartitions=2)
    scored = score_dask(ddf, columns_out=NARROW).compute(scheduler="synchronous")
    assert list(scored.columns) == [*WIDE[0], *NARROW_FULL]
    expected = score_frame(df, columns_out=NARROW)
    for name in NARROW_FULL:
        assert scored[name].astype(str).tolist() == expected[name].astype(str).tolist()
    with pytest.raises(InputFormatError, match="'nope'"):
        score_dask(ddf, columns_out="nope")
