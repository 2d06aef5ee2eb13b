"""Score an export file from Python: :func:`score_file` with :class:`ScoreOptions`.

The ``b12labs score`` command parses its arguments into a :class:`ScoreOptions` and calls
:func:`score_file`; everything it checks, reads and writes happens here. Every check that can
refuse a run (options, paths, the report's dependency, the header) runs before any row is
scored or any file created.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputFormatError
from ..panels import DEFAULT_WINDOW_DAYS
from ..profiles import DEFAULT_PROFILE, Profile, load_profile
from ._columns import detect_columns, norm
from ._io import LINE_ERRORS, AtomicWriter, excel_sheets, input_kind, read_chunks, read_header

__all__ = ["DEFAULT_CHUNKSIZE", "RunSummary", "ScoreOptions", "score_file"]

DEFAULT_CHUNKSIZE = 100_000

_SEP_NAMES = {"\\t": "\t", "tab": "\t", "TAB": "\t"}


def _whole(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputFormatError(
            f"{name} must be at least 1 (a whole number), got {value!r}", code="option-invalid"
        )


@dataclass(frozen=True)
class ScoreOptions:
    """How :func:`score_file` reads, scores and writes; validated on construction.

    ``columns`` / ``units`` are the CLI's ``--map`` / ``--unit``; ``long_columns`` its
    ``--id-col`` … ``--unit-col`` (roles ``patient_id``, ``collected_at``, ``test``, ``value``,
    ``unit``). ``sep`` takes one character, or ``\\t`` / ``tab`` for a tab.
    ``columns_out`` / ``canonical`` are ``--columns`` / ``--no-canonical``: which b12labs
    columns are written (default all; see :func:`~b12labs.batch.score_frame`); a given
    ``columns_out`` is stored as the tuple of full names it selects.
    """

    format: str = "auto"
    columns: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    long_columns: Mapping[str, str | None] = field(default_factory=dict)
    decimal: str = "."
    date_format: str | None = None
    sep: str = ","
    encoding: str | None = None
    sheet: str | None = None
    profile: str | Path | Profile = DEFAULT_PROFILE
    comment_limit: int | None = None
    columns_out: str | tuple[str, ...] | None = None
    canonical: bool = True
    window: float = DEFAULT_WINDOW_DAYS
    chunksize: int = DEFAULT_CHUNKSIZE
    engine: str = "pandas"
    threads: int | None = None
    scheduler: str | None = None
    workers: int = 2
    report: Path | None = None
    dry_run: bool = False
    summary: bool = True
    progress: bool = False
    history: bool = False

    def __post_init__(self) -> None:
        def bad(message: str) -> InputFormatError:
            return InputFormatError(message, code="option-invalid")

        if self.format not in ("auto", "wide", "long"):
            raise bad(f"format must be auto, wide or long, got {self.format!r}")
        if self.engine not in ("pandas", "dask"):
            raise bad(f"engine must be pandas or dask, got {self.engine!r}")
        if self.decimal not in (".", ","):
            raise bad(f"decimal must be '.' or ',', got {self.decimal!r}")
        _whole("--chunksize", self.chunksize)
        _whole("--threads", self.threads, optional=True)
        _whole("--workers", self.workers)
        window = self.window
        if (
            isinstance(window, bool)
            or not isinstance(window, int | float)
            or not math.isfinite(window)
            or window <= 0
        ):
            raise bad(f"--window must be a finite number of days above 0, got {window!r}")
        sep = _SEP_NAMES.get(self.sep, self.sep)
        if len(sep) != 1 or sep in ('"', "\n", "\r"):
            raise bad(f"--sep must be one character (or \\t / tab), got {self.sep!r}")
        object.__setattr__(self, "sep", sep)
        unknown = set(self.long_columns) - {"patient_id", "collected_at", "test", "value", "unit"}
        if unknown:
            raise bad(f"unknown long-format roles: {', '.join(sorted(unknown))}")
        if self.report is not None:
            object.__setattr__(self, "report", Path(self.report))
        if not isinstance(self.canonical, bool):
            raise bad(f"canonical must be True or False, got {self.canonical!r}")
        if not isinstance(self.history, bool):
            raise bad(f"history must be True or False, got {self.history!r}")
        from ._frame import output_columns

        selected = output_columns(self.columns_out, canonical=self.canonical)
        if self.columns_out is not None:
            object.__setattr__(self, "columns_out", selected)

    @property
    def selected(self) -> tuple[str, ...]:
        """The b12labs output columns written, in order."""
        from ._frame import output_columns

        return output_columns(self.columns_out, canonical=self.canonical)

    def computed(self) -> tuple[str, ...]:
        """The b12labs columns a run computes: those written, plus what its summary reads."""
        if not self.summary:
            return self.selected
        from ..report import SUMMARY_COLUMNS

        return self.selected + tuple(c for c in SUMMARY_COLUMNS if c not in self.selected)


@dataclass(frozen=True)
class RunSummary:
    """What a :func:`score_file` run did.

    ``rows_in``: data rows read; ``rows_scored``: output rows (wide: one per input row; long:
    one per episode); ``rows_with_errors``: output rows with a non-empty ``b12labs_error``;
    ``rejected_rows``: long-format rows written to ``rejects``. ``notes`` are warnings the
    CLI prints on stderr (other sheets not scored, a rejects file overwritten).
    """

    format: str
    engine: str
    output: str
    rows_in: int = 0
    rows_scored: int = 0
    rows_with_errors: int | None = None
    rejected_rows: int | None = None
    rejects: str | None = None
    report: str | None = None
    elapsed_s: float = 0.0
    status_counts: Mapping[str, int] = field(default_factory=dict)
    top_codes: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    mapping: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows_in / self.elapsed_s if self.elapsed_s else 0.0


def _looks_long(header: list[str]) -> bool:
    names = {norm(c) for c in header}
    has_test = bool(
        names & {"test", "loinc", "loinc_code", "test_code", "analyte", "test_name", "code"}
    )
    has_value = bool(names & {"value", "result", "result_value"})
    return has_test and has_value


def default_output(path: Path) -> str:
    name = path.name
    for ext in (".csv.gz", ".csv", ".parquet", ".pq", ".xlsx", ".xls", ".jsonl", ".txt"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return str(path.with_name(name + ".b12labs.csv"))


def rejects_path_of(output: str, path: Path) -> str:
    if output == "-":
        return str(path.with_name(path.name + ".rejects.csv"))
    return (output[:-3] if output.endswith(".gz") else output).rsplit(".", 1)[0] + ".rejects.csv"


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


def _same(a: Path | str, b: Path | str) -> bool:
    return str(a) != "-" and str(b) != "-" and Path(a).resolve() == Path(b).resolve()


def _check_paths(path: Path, output: str, options: ScoreOptions) -> None:
    if not path.exists():
        raise InputFormatError(f"input file not found: {path}")
    if path.is_dir():
        raise InputFormatError(f"input {path} is a folder, not a file")
    if not output == "-" and Path(output).is_dir():
        raise InputFormatError(f"output {output} is a folder; give a file name")
    report = options.report
    if report is None or options.dry_run:
        return
    if _same(report, path) or _same(report, output):
        raise InputFormatError(f"--report {report} names the input or the output; choose another")
    if report.is_dir():
        raise InputFormatError(f"--report {report} is a folder; give a file name")
    if not report.resolve().parent.is_dir():
        raise InputFormatError(f"--report folder {report.resolve().parent} does not exist")
    from ..report import require_matplotlib

    require_matplotlib()


def _with_line_errors(scored: pd.DataFrame, errors: Mapping[int, tuple[str, str]]) -> None:
    """Add the reader's per-line errors to ``b12labs_error`` / ``b12labs_error_code``."""
    positions = list(errors)
    for col, part in (("b12labs_error", 0), ("b12labs_error_code", 1)):
        if col not in scored.columns:  # not asked for (--columns)
            continue
        sep = "; " if part == 0 else ";"
        values = scored[col].astype(object).fillna("").to_numpy(dtype=object).copy()
        for pos in positions:
            extra = errors[pos][part]
            values[pos] = extra if not values[pos] else f"{extra}{sep}{values[pos]}"
        scored[col] = pd.Categorical(values)


def _chunks(path: Path, options: ScoreOptions) -> Iterator[pd.DataFrame]:
    return read_chunks(
        path,
        chunksize=options.chunksize,
        encoding=options.encoding,
        sep=options.sep,
        sheet=options.sheet,
    )


def _empty(header: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="string") for c in header})


def score_file(
    input: str | Path, output: str | Path | None = None, options: ScoreOptions | None = None
) -> RunSummary:
    """Score the export ``input`` into ``output`` (default ``INPUT.b12labs.csv``; ``-`` is
    stdout), as ``b12labs score`` does; returns a :class:`RunSummary`.

    Raises :class:`~b12labs.errors.InputFormatError` (and the other
    :class:`~b12labs.errors.B12LabsError` subclasses) before anything is written when the
    run cannot succeed; an interrupted run leaves neither the output nor a temporary file.
    """
    from ..report import CohortSummary

    options = options or ScoreOptions()
    path = Path(input)
    target = str(output) if output else default_output(path)
    _check_paths(path, target, options)
    profile = load_profile(options.profile)
    if options.comment_limit is not None:  # every engine and format reads it from the profile
        profile = profile.with_comment_limit(options.comment_limit, where="--comment-limit")
    notes: list[str] = []
    if input_kind(path) == "excel" and options.sheet is None:
        sheets = excel_sheets(path)
        if len(sheets) > 1:
            notes.append(
                f"{path.name} has {len(sheets)} sheets; scored the first, {sheets[0]!r} "
                "(--sheet NAME for another, --sheet all for every one)"
            )
    header = read_header(path, encoding=options.encoding, sep=options.sep, sheet=options.sheet)
    fmt = options.format
    if fmt == "auto":
        fmt = "long" if _looks_long(header) and not options.columns else "wide"
    summary = CohortSummary(long_format=fmt == "long")
    started = time.perf_counter()
    progress = _Progress(options.progress)
    base: dict[str, Any] = {"format": fmt, "engine": options.engine, "output": target}

    if fmt == "wide":
        cmap = detect_columns(header, mapping=options.columns, units=options.units)
        if options.history:
            from ._history import history_columns

            for role in ("patient_id", "collected_at"):  # --id-col / --time-col
                col = options.long_columns.get(role)
                if col:
                    if col not in header:
                        raise InputFormatError(
                            f"--{'id' if role == 'patient_id' else 'time'}-col {col!r} is not a "
                            f"column (columns: {', '.join(header)})"
                        )
                    cmap.context[role] = col
            history_roles = history_columns(header, cmap)  # before anything is read or written
        if options.dry_run:
            mapping = cmap.describe()
            if options.history:
                pid_col, time_col = history_roles
                mapping += f"\nhistory: patient id {pid_col!r}, collection date {time_col!r}"
            return RunSummary(**base, dry_run=True, mapping=mapping)
        if options.engine == "dask":
            if options.history:
                raise InputFormatError(
                    "--history streams with the pandas engine (a patient's rows in order); "
                    "leave out --engine dask",
                    code="option-invalid",
                )
            from ._dask import score_file_dask

            rows = score_file_dask(path, target, cmap, options, profile)
            return RunSummary(
                **base,
                rows_in=rows,
                rows_scored=rows,
                elapsed_s=time.perf_counter() - started,
                notes=notes,
            )
        rows = _score_wide(path, target, options, profile, header, cmap, summary, progress)
        rejects, rejected, episodes = None, None, rows
    else:
        from ._long import detect_long_columns

        roles = detect_long_columns(header, dict(options.long_columns))
        if options.dry_run:
            mapping = "\n".join(f"  {c!r:24} -> {r}" for r, c in roles.items())
            return RunSummary(**base, dry_run=True, mapping=mapping)
        if options.engine == "dask":
            raise InputFormatError(
                "--engine dask scores wide exports; long exports stream with the pandas engine"
            )
        rejects = rejects_path_of(target, path)
        rows, rejected, episodes = _score_long(
            path, target, rejects, options, profile, header, roles, summary, progress, notes
        )
    elapsed = time.perf_counter() - started
    totals = summary.to_dict()
    result = RunSummary(
        **base,
        rows_in=rows,
        rows_scored=episodes,
        rows_with_errors=int(totals.get("error_rows", 0)) if options.summary else None,
        rejected_rows=rejected,
        rejects=rejects,
        report=str(options.report) if options.report else None,
        elapsed_s=elapsed,
        status_counts=dict(totals.get("status_counts") or {}),
        top_codes=summary.top_codes(8),
        notes=notes,
    )
    if options.report:
        _write_report(summary, options.report, path, profile, result)
    return result


def _guarded(writers: list[AtomicWriter], work: Callable[[], None]) -> None:
    try:
        work()
        for w in writers:
            w.commit()
    except BaseException:
        for w in writers:
            w.abort()
        raise


def _score_wide(
    path: Path,
    output: str,
    options: ScoreOptions,
    profile: Profile,
    header: list[str],
    cmap: Any,
    summary: Any,
    progress: _Progress,
) -> int:
    from ._frame import check_units, score_frame

    writer = AtomicWriter(output, inputs=[path])
    rows = 0
    computed = options.computed()
    unwritten = list(computed[len(options.selected) :])

    def score(chunk: pd.DataFrame) -> pd.DataFrame:
        errors = chunk.attrs.pop(LINE_ERRORS, None)
        scored = score_frame(
            chunk,
            profile=profile,
            decimal=options.decimal,
            column_map=cmap,
            threads=options.threads,
            date_format=options.date_format,
            columns_out=computed,
            history=options.history,
        )
        if errors:
            _with_line_errors(scored, errors)
        return scored

    def emit(scored: pd.DataFrame) -> None:
        writer.write(scored.drop(columns=unwritten) if unwritten else scored)
        if options.summary:
            summary.update(scored)

    def work() -> None:
        nonlocal rows
        first = True
        for chunk in _chunks(path, options):
            chunk.index = pd.RangeIndex(rows, rows + len(chunk))
            if first:
                check_units(chunk, cmap)
                first = False
            emit(score(chunk))
            rows += len(chunk)
            progress.update(rows)
        if not writer.written:  # a header-only input: the output keeps the columns
            writer.write(score(_empty(header)).drop(columns=unwritten))

    def work_history() -> None:
        # results over time: each block holds every row of its patients (the last patient of
        # a chunk waits for the next one), and the reader's line errors follow their rows
        from ._history import WideHistory, history_columns

        nonlocal rows
        pid_col, time_col = history_columns(header, cmap)
        stream = WideHistory(pid_col, time_col, options.date_format)
        line_errors: dict[int, tuple[str, str]] = {}

        def score_block(block: pd.DataFrame | None) -> None:
            if block is None or not len(block):
                return
            errors = {
                pos: line_errors.pop(label)
                for pos, label in enumerate(block.index)
                if label in line_errors
            }
            if errors:
                block.attrs[LINE_ERRORS] = errors
            emit(score(block))

        first = True
        for chunk in _chunks(path, options):
            chunk.index = pd.RangeIndex(rows, rows + len(chunk))
            for pos, err in chunk.attrs.pop(LINE_ERRORS, {}).items():
                line_errors[rows + pos] = err
            if first:
                check_units(chunk, cmap)
                first = False
            score_block(stream.feed(chunk))
            rows += len(chunk)
            progress.update(rows)
        score_block(stream.finish())
        if not writer.written:  # a header-only input: the output keeps the columns
            writer.write(score(_empty(header)).drop(columns=unwritten))

    try:
        _guarded([writer], work_history if options.history else work)
    finally:
        progress.done()
    return rows


def _score_long(
    path: Path,
    output: str,
    rejects_path: str,
    options: ScoreOptions,
    profile: Profile,
    header: list[str],
    roles: dict[str, str],
    summary: Any,
    progress: _Progress,
    notes: list[str],
) -> tuple[int, int, int]:
    from ._long import LongScorer, iter_long

    scorer = LongScorer(
        roles=roles,
        profile=profile,
        window_days=options.window,
        decimal=options.decimal,
        date_format=options.date_format,
        columns=list(header),  # a header-only input still has its columns
        columns_out=options.computed(),
    )
    unwritten = list(options.computed()[len(options.selected) :])
    writer = AtomicWriter(output, inputs=[path])
    reject_writer = AtomicWriter(rejects_path, inputs=[path, Path(output)])
    rows = 0
    rejected = 0
    episodes = 0
    # the reader's malformed lines, by 1-based data row: they are rejected with their reason
    line_errors: dict[int, tuple[str, str]] = {}

    def chunks() -> Iterator[pd.DataFrame]:
        nonlocal rows
        for chunk in _chunks(path, options):
            for pos, err in chunk.attrs.pop(LINE_ERRORS, {}).items():
                line_errors[rows + pos + 1] = err
            rows += len(chunk)
            progress.update(rows)
            yield chunk

    def work() -> None:
        nonlocal rejected, episodes
        last_scored = last_rej = None
        for scored, rej in iter_long(chunks(), scorer):
            last_scored, last_rej = scored, rej
            if len(scored):
                episodes += len(scored)
                writer.write(scored.drop(columns=unwritten) if unwritten else scored)
                if options.summary and "b12labs_status" in scored.columns:
                    summary.update(scored)
            if len(rej):
                if line_errors:
                    rej = _reasons_of_lines(rej, line_errors)
                reject_writer.write(rej)
                rejected += len(rej)
        # a header-only input (or no episode): the outputs keep their header
        if not writer.written and last_scored is not None:
            writer.write(last_scored.drop(columns=unwritten))
        if not reject_writer.written and last_rej is not None:
            reject_writer.write(last_rej)

    try:
        _guarded([writer, reject_writer], work)
    finally:
        progress.done()
    if reject_writer.existed:
        notes.append(f"overwrote the existing rejects file {rejects_path}")
    return rows, rejected, episodes


def _reasons_of_lines(rej: pd.DataFrame, line_errors: Mapping[int, tuple[str, str]]) -> Any:
    rej = rej.copy()
    at = rej["b12labs_row"].astype(int).map(lambda r: line_errors.get(r))
    hit = at.notna()
    if hit.any():
        rej["b12labs_reject_reason"] = rej["b12labs_reject_reason"].astype(object)
        rej["b12labs_reject_code"] = rej["b12labs_reject_code"].astype(object)
        rej.loc[hit, "b12labs_reject_reason"] = [e[0] for e in at[hit]]
        rej.loc[hit, "b12labs_reject_code"] = [e[1] for e in at[hit]]
    return rej


def _write_report(
    summary: Any, report: Path, path: Path, profile: Profile, result: RunSummary
) -> None:
    from ..report import render_html

    t = profile.thresholds
    bands = {
        f"deficient below ({t['b12_deficient'].value:g} {t['b12_deficient'].unit})": profile[
            "b12_deficient"
        ],
        f"indeterminate up to ({t['b12_indeterminate_upper'].value:g} "
        f"{t['b12_indeterminate_upper'].unit})": profile["b12_indeterminate_upper"],
        f"upper limit ({t['b12_high'].value:g} {t['b12_high'].unit})": profile["b12_high"],
    }
    render_html(
        summary,
        report,
        title=f"b12labs cohort report: {path.name}",
        bands=bands,
        profile_id=f"{profile.id} v{profile.version}",
        extra={
            "MMA limit (umol/L)": f"{profile['mma_elevated']:g}",
            "input": path.name,
            "rows": f"{result.rows_in:,}",
            "elapsed": f"{result.elapsed_s:.1f} s",
            "rows/s": f"{result.rows_per_s:,.0f}",
        },
    )
