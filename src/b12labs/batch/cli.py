"""``b12labs score``: score an export file, streaming wide CSV/Parquet in chunks."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputFormatError
from ..panels import DEFAULT_WINDOW_DAYS
from ..profiles import load_profile
from ._columns import detect_columns, norm
from ._io import AtomicWriter, read_chunks, read_header

__all__ = ["add_arguments", "run", "score_file"]

DEFAULT_CHUNKSIZE = 100_000


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
    p.add_argument("--sep", default=",", help="CSV field separator (default ,)")
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
        p.add_argument(f"--{role}-col", help=f"long format: the {role} column")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise InputFormatError(f"{what} expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _looks_long(header: list[str]) -> bool:
    names = {norm(c) for c in header}
    has_test = bool(
        names & {"test", "loinc", "loinc_code", "test_code", "analyte", "test_name", "code"}
    )
    has_value = bool(names & {"value", "result", "result_value"})
    return has_test and has_value


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.perf_counter()

    def update(self, rows: int) -> None:
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            rate = rows / elapsed if elapsed else 0.0
            sys.stderr.write(f"\r  scored {rows:,} rows  ({rate:,.0f} rows/s)  ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _default_output(path: Path) -> str:
    name = path.name
    for ext in (".csv.gz", ".csv", ".parquet", ".pq", ".xlsx", ".xls", ".jsonl", ".txt"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return str(path.with_name(name + ".b12labs.csv"))


def score_file(args: argparse.Namespace) -> dict[str, Any]:
    """Score ``args.input`` as the CLI does; returns the run summary."""
    from ..report import CohortSummary

    path: Path = args.input
    if not path.exists():
        raise InputFormatError(f"input file not found: {path}")
    if args.chunksize < 1:
        raise InputFormatError("--chunksize must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise InputFormatError("--threads must be at least 1")
    if args.report is not None and not args.dry_run:
        from ..report import require_matplotlib

        require_matplotlib()
    mapping = _pairs(args.map, "--map")
    units = _pairs(args.unit, "--unit")
    profile = load_profile(args.profile)
    if args.comment_limit is not None:  # every engine and format reads it from the profile
        profile = profile.with_comment_limit(args.comment_limit, where="--comment-limit")
    header = read_header(path, encoding=args.encoding, sep=args.sep)
    fmt = args.format
    if fmt == "auto":
        fmt = "long" if _looks_long(header) and not mapping else "wide"
    output = args.output or _default_output(path)
    # the summary feeds the printed summary and the report; skip it when neither is wanted
    summary = CohortSummary()
    summarise = not args.quiet or args.report is not None
    started = time.perf_counter()
    progress = _Progress(not args.quiet)
    rejects_path = None

    if fmt == "wide":
        cmap = detect_columns(header, mapping=mapping, units=units)
        if args.dry_run:
            return {"dry_run": True, "format": "wide", "mapping": cmap.describe()}
        if args.engine == "dask":
            from ._dask import score_file_dask

            rows = score_file_dask(path, output, cmap, args, profile)
            elapsed = time.perf_counter() - started
            return {
                "rows": rows,
                "format": "wide",
                "engine": "dask",
                "output": output,
                "elapsed_s": elapsed,
                "rows_per_s": rows / elapsed if elapsed else 0.0,
            }
        from ._frame import check_units, score_frame

        writer = AtomicWriter(output, inputs=[path])
        rows = 0
        try:
            first = True
            for chunk in read_chunks(
                path, chunksize=args.chunksize, encoding=args.encoding, sep=args.sep
            ):
                chunk.index = pd.RangeIndex(rows, rows + len(chunk))
                if first:
                    check_units(chunk, cmap)
                    first = False
                scored = score_frame(
                    chunk,
                    profile=profile,
                    decimal=args.decimal,
                    column_map=cmap,
                    threads=args.threads,
                    date_format=args.date_format,
                )
                writer.write(scored)
                if summarise:
                    summary.update(scored)
                rows += len(chunk)
                progress.update(rows)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        finally:
            progress.done()
    else:
        from ._long import LongScorer, detect_long_columns

        roles = detect_long_columns(
            header,
            {
                "patient_id": args.id_col,
                "collected_at": args.time_col,
                "test": args.test_col,
                "value": args.value_col,
                "unit": args.unit_col,
            },
        )
        if args.dry_run:
            return {
                "dry_run": True,
                "format": "long",
                "mapping": "\n".join(f"  {c!r:24} -> {r}" for r, c in roles.items()),
            }
        if args.engine == "dask":
            raise InputFormatError(
                "--engine dask scores wide exports; long exports stream with the pandas engine"
            )
        scorer = LongScorer(
            roles=roles,
            profile=profile,
            window_days=args.window,
            decimal=args.decimal,
            date_format=args.date_format,
        )
        writer = AtomicWriter(output, inputs=[path])
        rejects_path = (
            (output[:-3] if output.endswith(".gz") else output).rsplit(".", 1)[0] + ".rejects.csv"
            if output != "-"
            else str(path.with_name(path.name + ".rejects.csv"))
        )
        reject_writer = AtomicWriter(rejects_path, inputs=[path])
        rows = 0
        rejected = 0
        try:

            def chunks() -> Iterator[pd.DataFrame]:
                nonlocal rows
                for chunk in read_chunks(
                    path, chunksize=args.chunksize, encoding=args.encoding, sep=args.sep
                ):
                    rows += len(chunk)
                    progress.update(rows)
                    yield chunk

            from ._long import iter_long

            for scored, rej in iter_long(chunks(), scorer):
                if len(scored):
                    writer.write(scored)
                    if summarise and "b12labs_status" in scored.columns:
                        summary.update(scored)
                if len(rej):
                    reject_writer.write(rej)
                    rejected += len(rej)
            writer.commit()
            reject_writer.commit()
        except BaseException:
            writer.abort()
            reject_writer.abort()
            raise
        finally:
            progress.done()
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "format": fmt,
        "engine": args.engine,
        "rows": rows,
        "output": output,
        "elapsed_s": elapsed,
        "rows_per_s": rows / elapsed if elapsed else 0.0,
        "summary": summary.to_dict(),
        "top_codes": summary.top_codes(8),
    }
    if rejects_path:
        result["rejects"] = rejects_path
        result["rejected_rows"] = rejected
        result["episodes"] = summary.to_dict().get("rows", 0)
    if args.report:
        from ..report import render_html

        t = profile.thresholds
        bands = {
            f"deficient below ({t['b12_deficient'].value:g} {t['b12_deficient'].unit})": profile[
                "b12_deficient"
            ],
            f"indeterminate up to ({t['b12_indeterminate_upper'].value:g} {t['b12_indeterminate_upper'].unit})": profile[
                "b12_indeterminate_upper"
            ],
            f"upper limit ({t['b12_high'].value:g} {t['b12_high'].unit})": profile["b12_high"],
        }
        render_html(
            summary,
            args.report,
            title=f"b12labs cohort report: {path.name}",
            bands=bands,
            profile_id=f"{profile.id} v{profile.version}",
            extra={
                "MMA limit (umol/L)": f"{profile['mma_elevated']:g}",
                "input": path.name,
                "rows": f"{rows:,}",
                "elapsed": f"{elapsed:.1f} s",
                "rows/s": f"{result['rows_per_s']:,.0f}",
            },
        )
        result["report"] = str(args.report)
    return result


def _print_summary(result: dict[str, Any]) -> None:
    if result.get("dry_run"):
        print(f"format: {result['format']}")
        print(result["mapping"])
        print("(dry run: nothing scored)")
        return
    out = sys.stderr
    s = result.get("summary", {})
    print(
        f"b12labs: scored {result['rows']:,} rows ({result['format']}, {result['engine']}) "
        f"in {result['elapsed_s']:.1f} s ({result.get('rows_per_s', 0):,.0f} rows/s) -> {result['output']}",
        file=out,
    )
    if "episodes" in result:
        print(
            f"  episodes: {result['episodes']:,}; rejected rows: {result['rejected_rows']:,} -> {result['rejects']}",
            file=out,
        )
    status = s.get("status_counts") or {}
    if status:
        print("  status: " + ", ".join(f"{k} {v:,}" for k, v in status.items()), file=out)
    if s.get("error_rows") is not None:
        print(f"  rows with errors: {s['error_rows']:,}", file=out)
    if result.get("top_codes"):
        print(
            "  top findings: " + ", ".join(f"{c} {n:,}" for c, n in result["top_codes"]), file=out
        )
    if result.get("report"):
        print(f"  report: {result['report']}", file=out)


def run(args: argparse.Namespace) -> int:
    result = score_file(args)
    if not args.quiet or result.get("dry_run"):
        _print_summary(result)
    return 0
