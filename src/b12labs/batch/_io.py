"""Reading exports in chunks and writing results atomically (CSV, Parquet, JSON Lines)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import secrets
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from ..errors import InputFormatError, MissingExtraError

__all__ = [
    "CELL_MAX",
    "LINE_ERRORS",
    "AtomicWriter",
    "excel_sheets",
    "input_kind",
    "read_chunks",
    "read_header",
]

#: The longest cell the readers use, in characters; a longer one is an error in its row.
CELL_MAX = 1 << 20
#: ``frame.attrs`` key of a chunk's malformed lines: {position in the chunk: (message, code)}.
LINE_ERRORS = "b12labs_line_errors"
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)

MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a"})


def input_kind(path: str | Path) -> str:
    name = str(path).lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".xlsx", ".xlsm", ".xls")):
        return "excel"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return "csv"


def _open_text(path: Path, encoding: str) -> IO[str]:
    if str(path).lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def _encoding(encoding: str | None) -> str:
    # utf-8-sig reads UTF-8 with or without a byte-order mark
    return "utf-8-sig" if encoding in (None, "utf-8", "utf8") else encoding


def _not_gzip(path: Path) -> InputFormatError:
    return InputFormatError(f"{path}: not a complete gzip file (truncated, or not gzip at all)")


def _not_text(path: Path, encoding: str | None, exc: UnicodeDecodeError) -> InputFormatError:
    return InputFormatError(
        f"{path}: not valid {encoding or 'UTF-8'} text at byte {exc.start}; "
        "pass --encoding latin-1 (or the file's encoding)"
    )


def read_header(
    path: Path, *, encoding: str | None = None, sep: str = ",", sheet: str | None = None
) -> list[str]:
    """The header row as written (duplicates kept, so they can be reported)."""
    kind = input_kind(path)
    if kind == "parquet":
        pq = _pyarrow_parquet()
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
            raise InputFormatError(f"{path}: not a Parquet file ({type(exc).__name__})") from None
    if kind == "excel":
        return [str(c) for c in _read_excel(path, sheet=sheet, nrows=0).columns]
    if kind == "jsonl":
        return _jsonl_header(path)
    try:
        with _open_text(path, _encoding(encoding)) as fh:
            row = next(csv.reader(fh, delimiter=sep), None)
    except UnicodeDecodeError as exc:
        raise _not_text(path, encoding, exc) from None
    except _GZIP_ERRORS:
        raise _not_gzip(path) from None
    except csv.Error as exc:
        raise InputFormatError(f"{path}: line 1: malformed CSV ({exc})") from None
    if not row:
        raise InputFormatError(f"{path}: empty file (no header row)")
    if len(row) == 1:
        for candidate in (";", "\t", ",", "|"):
            if candidate != sep and candidate in row[0]:
                shown = "tab" if candidate == "\t" else candidate
                raise InputFormatError(
                    f"{path}: the header has one column but holds {shown!r}: is that the "
                    f"separator? try --sep '{shown}'"
                )
    return row


def _jsonl_header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        break
                    return [str(k) for k in record]
    except (UnicodeDecodeError, ValueError):
        pass
    else:
        raise InputFormatError(f"{path}: empty file (no JSON object on the first line)")
    raise InputFormatError(f"{path}: line 1 is not a JSON object")


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("reading and writing Parquet", "parquet", "pyarrow") from None
    return pq


def _openpyxl() -> None:
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        raise MissingExtraError("reading Excel files", "excel", "openpyxl") from None


def excel_sheets(path: Path) -> list[str]:
    """The sheet names of a workbook, in order."""
    _openpyxl()
    try:
        with pd.ExcelFile(path) as book:
            return [str(n) for n in book.sheet_names]
    except Exception as exc:  # zipfile.BadZipFile, ValueError, KeyError... from the readers
        raise InputFormatError(
            f"{path}: not an Excel workbook ({type(exc).__name__}); a CSV file needs a .csv name"
        ) from None


def _read_excel(path: Path, *, sheet: str | None = None, **kwargs: Any) -> pd.DataFrame:
    """One sheet (default the first) or, with ``sheet="all"``, every sheet one after the
    other with a ``sheet`` column naming each row's sheet."""
    names = excel_sheets(path)
    if sheet is not None and sheet != "all" and sheet not in names:
        raise InputFormatError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(names)})")
    wanted = names if sheet == "all" else [sheet if sheet is not None else names[0]]
    frames = []
    for name in wanted:
        frame: pd.DataFrame = pd.read_excel(
            path, sheet_name=name, dtype=str, keep_default_na=False, **kwargs
        )
        if sheet == "all":
            frame.insert(0, "sheet", name)
        frames.append(frame)
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def read_chunks(
    path: Path,
    *,
    chunksize: int,
    encoding: str | None = None,
    sep: str = ",",
    sheet: str | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the input as string-typed frames of at most ``chunksize`` rows (Excel: one frame).

    A CSV line with the wrong number of fields, or a cell longer than :data:`CELL_MAX`, stays
    in place as a row; ``frame.attrs[LINE_ERRORS]`` maps its position in the chunk to
    ``(message, error code)``, and its cells are blank where they cannot be used.
    """
    kind = input_kind(path)
    if kind == "parquet":
        pq = _pyarrow_parquet()
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunksize):
            frame = batch.to_pandas()
            yield frame
        return
    if kind == "excel":
        yield _read_excel(path, sheet=sheet)
        return
    if kind == "jsonl":
        yield from _read_jsonl(path, chunksize=chunksize)
        return
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        # pandas' C engine pads short lines silently: the csv module sees every line as written
        yield from _read_csv_lines(path, chunksize=chunksize, encoding=encoding, sep=sep)
        return
    yield from _read_csv_arrow(path, chunksize=chunksize, encoding=encoding, sep=sep)


def _read_jsonl(path: Path, *, chunksize: int) -> Iterator[pd.DataFrame]:
    try:
        for frame in pd.read_json(
            path, lines=True, dtype=False, chunksize=chunksize, encoding="utf-8-sig"
        ):
            text = frame.astype("string").fillna("")
            yield text
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{path}: not JSON Lines ({type(exc).__name__})") from None


def _read_csv_lines(
    path: Path, *, chunksize: int, encoding: str | None, sep: str, skip: int = 0
) -> Iterator[pd.DataFrame]:
    """The careful CSV reader: every record kept, malformed ones marked (see read_chunks).

    ``skip`` records after the header are passed over (the fast reader already gave them).
    """
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(max(previous_limit, 1 << 30))  # large cells are errors, not crashes
    try:
        with _open_text(path, _encoding(encoding)) as fh:
            reader = csv.reader(fh, delimiter=sep)
            header = next(reader, None)
            if not header:
                return
            width = len(header)
            rows: list[list[str]] = []
            errors: dict[int, tuple[str, str]] = {}
            seen = 0
            start = reader.line_num + 1
            for fields in reader:
                line, start = start, reader.line_num + 1
                if not fields:  # blank lines are skipped, as the fast reader does
                    continue
                seen += 1
                if seen <= skip:
                    continue
                if len(fields) != width:
                    errors[len(rows)] = (
                        f"line {line}: expected {width} fields, found {len(fields)}; "
                        "row not scored",
                        "line-malformed",
                    )
                    rows.append([""] * width)
                else:
                    for i, cell in enumerate(fields):
                        if len(cell) > CELL_MAX:
                            fields[i] = ""
                            message = (
                                f"line {line}, column {header[i]!r}: a cell of {len(cell):,} "
                                f"characters (more than {CELL_MAX:,}); not used"
                            )
                            old = errors.get(len(rows))
                            errors[len(rows)] = (
                                f"{old[0]}; {message}" if old else message,
                                "cell-too-large",
                            )
                    rows.append(fields)
                if len(rows) >= chunksize:
                    yield _frame(rows, header, errors)
                    rows, errors = [], {}
            if rows:
                yield _frame(rows, header, errors)
    except UnicodeDecodeError as exc:
        raise _not_text(path, encoding, exc) from None
    except _GZIP_ERRORS:
        raise _not_gzip(path) from None
    except csv.Error as exc:
        raise InputFormatError(f"{path}: malformed CSV ({exc})") from None
    finally:
        csv.field_size_limit(previous_limit)


def _frame(rows: list[list[str]], header: list[str], errors: dict[int, tuple[str, str]]) -> Any:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(header)
    frame = pd.DataFrame({i: pd.array(col, dtype="string") for i, col in enumerate(columns)})
    frame.columns = pd.Index(header)
    if errors:
        frame.attrs[LINE_ERRORS] = errors
    return frame


def _read_csv_arrow(
    path: Path, *, chunksize: int, encoding: str | None, sep: str
) -> Iterator[pd.DataFrame]:
    """Stream a CSV with pyarrow (about 4x faster than pandas here), every column as text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = read_header(path, encoding=encoding, sep=sep)
    enc = "utf8" if encoding in (None, "utf-8", "utf8", "utf-8-sig") else encoding
    # pyarrow reads about 35 blocks ahead: 1 MiB blocks keep that near 40 MB, whatever the file size
    read = pacsv.ReadOptions(
        block_size=1 << 20, encoding=enc, column_names=header, skip_rows=1, use_threads=False
    )
    parse = pacsv.ParseOptions(delimiter=sep, newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    mapper = {pa.string(): pd.StringDtype("pyarrow")}.get
    compression = "gzip" if str(path).lower().endswith(".gz") else None
    pending: list[Any] = []
    rows = 0
    given = 0
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            reader = pacsv.open_csv(
                stream, read_options=read, parse_options=parse, convert_options=convert
            )
            for batch in reader:
                pending.append(batch)
                rows += batch.num_rows
                while rows >= chunksize:
                    table = pa.Table.from_batches(pending).combine_chunks()
                    head, rest = table.slice(0, chunksize), table.slice(chunksize)
                    yield _large_cells(head, given, head.to_pandas(types_mapper=mapper))
                    given += chunksize
                    pending, rows = rest.to_batches(), rest.num_rows
            if rows:
                table = pa.Table.from_batches(pending)
                yield _large_cells(table, given, table.to_pandas(types_mapper=mapper))
                given += rows
    except UnicodeDecodeError as exc:
        raise _not_text(path, encoding, exc) from None
    except (pa.ArrowInvalid, OSError):
        # ragged lines, an unclosed quote, a cell larger than a block, a broken gzip stream:
        # the careful reader takes over after the rows already given, and names each bad line
        yield from _read_csv_lines(
            path, chunksize=chunksize, encoding=encoding, sep=sep, skip=given
        )


def _large_cells(table: Any, before: int, frame: pd.DataFrame) -> pd.DataFrame:
    """Blank the cells longer than CELL_MAX and mark their rows (checked per column, fast)."""
    import pyarrow.compute as pc

    errors: dict[int, tuple[str, str]] = {}
    for i, name in enumerate(table.column_names):
        lengths = pc.utf8_length(table.column(i))
        longest = pc.max(lengths).as_py()
        if longest is None or longest <= CELL_MAX:
            continue
        for pos in pc.indices_nonzero(pc.greater(lengths, CELL_MAX)).to_pylist():
            message = (
                f"data row {before + pos + 1}, column {name!r}: a cell of more than "
                f"{CELL_MAX:,} characters; not used"
            )
            old = errors.get(pos)
            errors[pos] = (f"{old[0]}; {message}" if old else message, "cell-too-large")
            frame.iloc[pos, i] = ""
    if errors:
        frame.attrs[LINE_ERRORS] = errors
    return frame


def _arrow_table(df: pd.DataFrame) -> Any:
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # columns of mixed Python objects: write every non-numeric column as text
        arrays = []
        for col in df.columns:
            s = df[col]
            if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
                arrays.append(pa.array(s.to_numpy(), from_pandas=True))
            else:
                strings = s.astype("string")
                arrays.append(
                    pa.array(strings.where(strings.notna(), None).tolist(), type=pa.string())
                )
        return pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns])
    # categorical columns (the scorer's text outputs) arrive as dictionary arrays whose index
    # width depends on the chunk: one dictionary type keeps every chunk's schema the same
    text = pa.dictionary(pa.int32(), pa.string())
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type) and field.type != text:
            table = table.set_column(i, pa.field(field.name, text), table.column(i).cast(text))
    return table


class AtomicWriter:
    """Writes chunks to a temporary file, renamed onto the output only when all went well.

    An interrupted run never leaves a half-written output, nor the temporary file: it is
    created at the first write (a refused run creates nothing), with mode 0o666 less the
    umask like any file the user writes, and removed by :meth:`abort`. ``-`` writes CSV to
    stdout.
    """

    def __init__(self, path: str, *, inputs: list[Path]) -> None:
        self.path = path
        self.stdout = path == "-"
        self.kind = "csv" if self.stdout else _output_kind(path)
        self.tmp: Path | None = None
        self.existed = False
        if not self.stdout:
            target = Path(path).resolve()
            for p in inputs:
                if p.resolve() == target:
                    raise InputFormatError(
                        f"refusing to overwrite the input file {path}; choose another -o"
                    )
            if target.is_dir():
                raise InputFormatError(f"output {path} is a folder; give a file name")
            if not target.parent.is_dir():
                raise InputFormatError(f"output folder {target.parent} does not exist")
            self.existed = target.exists()
            self._target = target
        self._fh: Any = None
        self._writer: Any = None
        self._first = True

    @property
    def written(self) -> bool:
        """Whether any frame (even an empty one, for its header) was written."""
        return not self._first

    def _open_tmp(self) -> Path:
        if self.tmp is None:
            tmp = self._target.with_name(f".{self._target.name}.{secrets.token_hex(4)}.part")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            os.close(fd)
            self.tmp = tmp
        return self.tmp

    def write(self, df: pd.DataFrame) -> None:
        if self.kind == "parquet":
            pq = _pyarrow_parquet()
            table = _arrow_table(df)
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self._open_tmp()), table.schema)
            self._writer.write_table(table)
            self._first = False
            return
        if self._fh is None:
            if self.stdout:
                self._fh = sys.stdout.buffer
            elif str(self.path).lower().endswith(".gz"):
                self._fh = gzip.open(self._open_tmp(), "wb", compresslevel=5)  # noqa: SIM115
            else:
                self._fh = open(self._open_tmp(), "wb")  # noqa: SIM115
        if self.kind == "jsonl":
            text = df.to_json(orient="records", lines=True, force_ascii=False)
            self._fh.write(text.encode("utf-8"))
            if text and not text.endswith("\n"):
                self._fh.write(b"\n")
        else:
            self._write_csv(df)
        self._first = False

    def _write_csv(self, df: pd.DataFrame) -> None:
        try:
            import pyarrow.csv as pacsv
        except ImportError:
            df.to_csv(self._fh, index=False, header=self._first, lineterminator="\n")
            return
        options = pacsv.WriteOptions(include_header=self._first)
        pacsv.write_csv(_arrow_table(df), self._fh, write_options=options)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._fh is not None and not self.stdout:
            self._fh.close()
        elif self._fh is not None:
            self._fh.flush()
        if not self.stdout:
            tmp = self._open_tmp()  # nothing written at all: an empty file
            os.replace(tmp, self.path)
            self.tmp = None

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if self._fh is not None and not self.stdout:
                self._fh.close()
        finally:
            if self.tmp is not None and self.tmp.exists():
                self.tmp.unlink()
            self.tmp = None


def _output_kind(path: str) -> str:
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
        return "jsonl"
    if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return "csv"
    raise InputFormatError(
        f"cannot tell the output format of {path!r}: use .csv, .csv.gz, .parquet or .jsonl"
    )
