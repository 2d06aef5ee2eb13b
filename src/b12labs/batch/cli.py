"""``b12labs score``: parse the arguments into :class:`ScoreOptions` and call :func:`score_file`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputFormatError
from ..panels import DEFAULT_WINDOW_DAYS
from ._file import DEFAULT_CHUNKSIZE, RunSummary, ScoreOptions, score_file

__all__ = ["add_arguments", "options_of", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="CSV (also .gz), Parquet or Excel export")
    p.add_argument(
        "-o",
        "--output",
        help="output file (.csv, .csv.gz, .parquet, .jsonl) or - for stdout; "
        "default INPUT.b12labs.csv",
    )
    p.add_argument(
        "--format",
        choices=["auto", "wide", "long"],
        default="auto",
        help="wide: one row per patient/specimen; long: one result per row (default: detect)",
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COL=ANALYTE",
        help="map a column to an analyte or context field (repeatable)",
    )
    p.add_argument(
        "--unit",
        action="append",
        default=[],
        metavar="ANALYTE=UNIT",
        help="the unit of an analyte whose cells and header carry none (repeatable)",
    )
    p.add_argument(
        "--decimal", choices=[".", ","], default=".", help="decimal separator in the values"
    )
    p.add_argument(
        "--date-format",
        default=None,
        metavar="PATTERN",
        help="layout of the dates (strftime, e.g. %%d/%%m/%%Y); default ISO 8601 only: "
        "day/month order is never guessed",
    )
    p.add_argument(
        "--sep", default=",", help="CSV field separator (default ,; \\t or tab for a tab)"
    )
    p.add_argument(
        "--sheet",
        metavar="NAME|all",
        help="Excel: the sheet to score (default the first; all: every sheet, one after the "
        "other, with a 'sheet' column)",
    )
    p.add_argument(
        "--encoding", default=None, help="input text encoding (default UTF-8, with or without BOM)"
    )
    p.add_argument(
        "--profile", default="nice-ng239-2024", help="profile id or path to a local profile TOML"
    )
    p.add_argument(
        "--comment-limit",
        type=int,
        help="longest b12labs_comment, in characters (default: the profile's, else 400)",
    )
    p.add_argument(
        "--columns",
        metavar="NAMES",
        help="the b12labs output columns to write, in order, comma-separated: short names "
        "(status,codes,max_severity,actions,comment,error,error_code,profile,version) or full "
        "ones (b12labs_status, b12_pmol_l …); input columns and rows are always kept "
        "(default: every b12labs column, then the canonical value columns)",
    )
    p.add_argument(
        "--no-canonical",
        action="store_true",
        help="leave out the canonical value columns (b12_pmol_l …)",
    )
    p.add_argument(
        "--history",
        action="store_true",
        help="wide format: results over time; each row's history is the same patient's "
        "earlier rows (needs a patient id and a collection date column, rows sorted by "
        "patient then collection date; unsorted input is refused). Long exports always "
        "use each patient's earlier results",
    )
    p.add_argument(
        "--window",
        type=float,
        default=DEFAULT_WINDOW_DAYS,
        help="long format: episode window in days",
    )
    p.add_argument(
        "--chunksize", type=int, default=DEFAULT_CHUNKSIZE, help="rows per chunk when streaming"
    )
    p.add_argument("--engine", choices=["pandas", "dask"], default="pandas")
    p.add_argument(
        "--threads",
        type=int,
        help="pandas engine: threads that parse a chunk's analyte columns "
        "(default: one per core, at most 8; 1 for none)",
    )
    p.add_argument("--scheduler", help="dask: address of an existing distributed scheduler")
    p.add_argument("--workers", type=int, default=2, help="dask: workers of the local cluster")
    p.add_argument("--report", type=Path, help="write a self-contained HTML cohort report")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the detected column mapping and units; score nothing",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    for role in ("id", "time", "test", "value", "unit"):
        also = " (and wide with --history)" if role in ("id", "time") else ""
        p.add_argument(f"--{role}-col", help=f"long format{also}: the {role} column")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise InputFormatError(f"{what} expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def options_of(args: argparse.Namespace) -> ScoreOptions:
    """The :class:`ScoreOptions` of parsed ``b12labs score`` arguments."""
    return ScoreOptions(
        format=args.format,
        columns=_pairs(args.map, "--map"),
        units=_pairs(args.unit, "--unit"),
        long_columns={
            "patient_id": args.id_col,
            "collected_at": args.time_col,
            "test": args.test_col,
            "value": args.value_col,
            "unit": args.unit_col,
        },
        decimal=args.decimal,
        date_format=args.date_format,
        sep=args.sep,
        encoding=args.encoding,
        sheet=args.sheet,
        profile=args.profile,
        comment_limit=args.comment_limit,
        columns_out=args.columns,
        canonical=not args.no_canonical,
        window=args.window,
        chunksize=args.chunksize,
        engine=args.engine,
        threads=args.threads,
        scheduler=args.scheduler,
        workers=args.workers,
        report=args.report,
        dry_run=args.dry_run,
        history=args.history,
        # the summary feeds the printed summary and the report; skip it when neither is wanted
        summary=not args.quiet or args.report is not None,
        progress=not args.quiet,
    )


def _print_summary(result: RunSummary) -> None:
    if result.dry_run:
        print(f"format: {result.format}")
        print(result.mapping)
        print("(dry run: nothing scored)")
        return
    out = sys.stderr
    print(
        f"b12labs: scored {result.rows_in:,} rows ({result.format}, {result.engine}) "
        f"in {result.elapsed_s:.1f} s ({result.rows_per_s:,.0f} rows/s) -> {result.output}",
        file=out,
    )
    if result.rejects is not None:
        print(
            f"  episodes: {result.rows_scored:,}; rejected rows: {result.rejected_rows or 0:,}"
            f" -> {result.rejects}",
            file=out,
        )
    if result.status_counts:
        print(
            "  status: " + ", ".join(f"{k} {v:,}" for k, v in result.status_counts.items()),
            file=out,
        )
    if result.rows_with_errors is not None:
        print(f"  rows with errors: {result.rows_with_errors:,}", file=out)
    if result.top_codes:
        print("  top findings: " + ", ".join(f"{c} {n:,}" for c, n in result.top_codes), file=out)
    if result.report:
        print(f"  report: {result.report}", file=out)


def run(args: argparse.Namespace) -> int:
    result = score_file(args.input, args.output, options_of(args))
    for note in result.notes:
        print(f"b12labs: note: {note}", file=sys.stderr)
    if not args.quiet or result.dry_run:
        _print_summary(result)
    return 0
