"""Benchmarks of batch scoring (issue 4): ``b12labs score``, ``score_frame``, peak RSS, engines.

Sub-benchmarks (all by default; ``--only`` picks some, comma-separated or repeated):

* ``end_to_end``: wall time of ``b12labs score FILE -o OUT.csv --quiet`` as a child process
  divided by the wall time of a child process doing plain ``pandas.read_csv(FILE)`` +
  ``DataFrame.to_csv(OUT, index=False)`` on the same file. Target <= 2.0.
* ``in_memory``: ``score_frame`` on the same rows in memory (read with ``dtype=str`` first):
  rows/s, and the ratio to a loop of ``interpret()`` over a 20 000-row sample of the same rows
  (converted to dict panels beforehand, untimed). Target >= 50x.
* ``rss``: peak RSS of ``b12labs score`` as a child process on a 1 000 000- and a
  5 000 000-row file with the default chunk size. Target < 1 GB each, within 20 % of each other.
* ``engines``: rows/s of ``--engine pandas`` and ``--engine dask --workers 2`` (no target).
* ``peers``: in one run on the same file, child processes of (a) pandas read + write, (b) the
  pyarrow floor (``pyarrow.csv`` read of the input + ``pyarrow.csv.write_csv`` of b12labs' own
  output table, prepared beforehand), (c) a DuckDB SQL script (B12 band + MMA elevated status
  subset with ``CASE``, narrow CSV out; extra ``bench``), (d) ``b12labs score`` default and
  ``--columns status,codes,max_severity,actions,error``. Targets: score / floor <= 1.5,
  score --columns / DuckDB <= 1.5. A peer that is not installed is skipped, saying so.

Every child process is started by a fresh wrapper process that times it and reads
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after waiting for it, so each figure belongs
to exactly one child. Input files are generated with ``make_data.py`` (seed 12, 1 % bad cells)
into ``benchmarks/_data/`` when missing and kept there; scored outputs are deleted after each
measurement unless ``--keep-data``.

    .venv/bin/python benchmarks/batch_bench.py                       # everything, full size
    .venv/bin/python benchmarks/batch_bench.py --only end_to_end --rows 200000
    .venv/bin/python benchmarks/batch_bench.py --only rss --rss-rows 1000000,5000000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "_data"
for _p in (str(REPO / "src"), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

PARTS = ("end_to_end", "in_memory", "rss", "engines", "peers")
TARGET_E2E = 2.0
TARGET_IN_MEMORY = 50.0
TARGET_RSS_BYTES = 1_000_000_000  # 1 GB
TARGET_RSS_SPREAD = 0.20
TARGET_PEERS = 1.5
NARROW_COLUMNS = "status,codes,max_severity,actions,error"
SEED = 12
BAD = 0.01

# Runs one command as its child, then reports its wall time and peak RSS (ru_maxrss, KiB).
_WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall_s": wall, "maxrss_kb": ru.ru_maxrss, "user_s": ru.ru_utime,
                  "sys_s": ru.ru_stime, "rc": p.returncode,
                  "stderr": p.stderr.decode("utf-8", "replace")[-3000:]}))
"""

_PANDAS_COPY = "import sys, pandas as pd; pd.read_csv(sys.argv[1]).to_csv(sys.argv[2], index=False)"


# --- helpers -------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _b12labs_cmd() -> list[str]:
    script = Path(sys.executable).parent / "b12labs"
    return [str(script)] if script.exists() else [sys.executable, "-m", "b12labs"]


def data_file(rows: int) -> Path:
    """The generated wide CSV with ``rows`` rows, generating it once if missing."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"wide_{rows}.csv"
    if not path.exists():
        from make_data import write_wide

        part = path.with_suffix(".csv.part")
        print(
            f"  generating {path.relative_to(REPO)} ({rows:,} rows, seed {SEED}, {BAD:.0%} bad cells)...",
            flush=True,
        )
        t0 = time.perf_counter()
        write_wide(part, rows, BAD, SEED)
        part.replace(path)
        print(f"  generated in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def measure(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` under a fresh wrapper process: wall s, peak RSS and exit code of that child."""
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result['rc']}:\n{result['stderr']}")
    return result


def count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 24):
            n += block.count(b"\n")
    return n


def _cleanup(path: Path, keep: bool) -> None:
    if not keep:
        path.unlink(missing_ok=True)


# --- end_to_end ----------------------------------------------------------------------------------


def bench_end_to_end(rows: int, repeat: int, keep: bool) -> dict[str, Any]:
    src = data_file(rows)
    out_score = DATA / f"out_score_{rows}.csv"
    out_pandas = DATA / f"out_pandas_{rows}.csv"
    score_cmd = [*_b12labs_cmd(), "score", str(src), "-o", str(out_score), "--quiet"]
    pandas_cmd = [sys.executable, "-c", _PANDAS_COPY, str(src), str(out_pandas)]
    scored: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    for i in range(repeat):  # alternate: a noisy neighbour or a cold page cache hits both
        pair = (
            ((plain, pandas_cmd), (scored, score_cmd))
            if i % 2 == 0
            else ((scored, score_cmd), (plain, pandas_cmd))
        )
        for sink, cmd in pair:
            sink.append(measure(cmd))
    out_rows = count_lines(out_score) - 1
    _cleanup(out_score, keep)
    _cleanup(out_pandas, keep)
    t_score = min(r["wall_s"] for r in scored)
    t_plain = min(r["wall_s"] for r in plain)
    ratio = t_score / t_plain
    return {
        "rows": rows,
        "repeat": repeat,
        "output_rows": out_rows,
        "score_s": [r["wall_s"] for r in scored],
        "pandas_s": [r["wall_s"] for r in plain],
        "score_best_s": t_score,
        "pandas_best_s": t_plain,
        "score_rss_mb": max(r["maxrss_kb"] for r in scored) * 1024 / 1e6,
        "pandas_rss_mb": max(r["maxrss_kb"] for r in plain) * 1024 / 1e6,
        "ratio": ratio,
        "pass": ratio <= TARGET_E2E,
    }


def print_end_to_end(r: dict[str, Any]) -> None:
    print(f"\n== end_to_end: {r['rows']:,}-row wide CSV, best of {r['repeat']} child runs each ==")
    print(f"{'child process':<52}{'best s':>8}{'rows/s':>12}{'peak RSS MB':>13}   all runs (s)")
    print(
        f"{'b12labs score FILE -o OUT.csv --quiet':<52}{r['score_best_s']:>8.2f}"
        f"{r['rows'] / r['score_best_s']:>12,.0f}{r['score_rss_mb']:>13.0f}   "
        + ", ".join(f"{x:.2f}" for x in r["score_s"])
    )
    print(
        f"{'pandas.read_csv(FILE).to_csv(OUT) (baseline)':<52}{r['pandas_best_s']:>8.2f}"
        f"{r['rows'] / r['pandas_best_s']:>12,.0f}{r['pandas_rss_mb']:>13.0f}   "
        + ", ".join(f"{x:.2f}" for x in r["pandas_s"])
    )
    print(
        f"{'ratio score / baseline':<52}{r['ratio']:>7.2f}x   target <= {TARGET_E2E:.1f}   {_verdict(r['pass'])}"
    )
    if r["output_rows"] != r["rows"]:
        print(f"  WARNING: output has {r['output_rows']:,} data lines for {r['rows']:,} input rows")


# --- in_memory -----------------------------------------------------------------------------------

# wide column -> (analyte, unit column or fixed unit or None)
_ANALYTE_COLUMNS: dict[str, tuple[str, str | None, str | None]] = {
    "b12": ("b12", "b12_unit", None),
    "mma": ("mma", "mma_unit", None),
    "homocysteine (umol/L)": ("homocysteine", None, "umol/L"),
    "mcv": ("mcv", None, None),
    "hb": ("hb", "hb_unit", None),
    "ferritin_ng_ml": ("ferritin", None, "ng/mL"),
    "folate": ("folate", "folate_unit", None),
    "egfr": ("egfr", None, None),
}


def row_to_panel(row: Mapping[Any, Any]) -> tuple[dict[str, str], dict[str, Any], int]:
    """A wide row as ``interpret()`` input: (panel, context, cells dropped as unusable).

    Cells ``interpret()`` rejects (``hemolysed``, ``12,5``...) are dropped here, untimed, so the
    loop scores the row on its valid values as ``score_frame`` does (which favours the loop).
    """
    from b12labs.errors import InputError
    from b12labs.models import LabPanel, PatientContext

    panel: dict[str, str] = {}
    dropped = 0
    for col, (key, unit_col, fixed) in _ANALYTE_COLUMNS.items():
        cell = row.get(col, "").strip()
        if not cell:
            continue
        unit = row.get(unit_col, "") if unit_col else fixed
        text = f"{cell} {unit}" if unit else cell
        try:
            LabPanel.parse({key: text})
        except InputError:
            dropped += 1
            continue
        panel[key] = text
    context: dict[str, Any] = {}
    for field in ("age", "sex"):
        if row.get(field, "").strip():
            context[field] = row[field].strip()
    for field in ("medications", "symptoms"):
        terms = [t.strip() for t in row.get(field, "").split(";") if t.strip()]
        if terms:
            context[field] = terms
    for field in list(context):
        try:
            PatientContext.parse({field: context[field]})
        except InputError:
            del context[field]
            dropped += 1
    return panel, context, dropped


def bench_in_memory(rows: int, sample: int, repeat: int) -> dict[str, Any]:
    import gc

    import pandas as pd

    from b12labs import interpret
    from b12labs.batch import score_frame

    src = data_file(rows)
    t0 = time.perf_counter()
    df = pd.read_csv(src, dtype=str, keep_default_na=False, na_filter=False)
    read_s = time.perf_counter() - t0
    score_frame(df.head(2_000))  # warm-up: imports, profile, caches
    frame_s: list[float] = []
    scored = None
    for _ in range(repeat):
        scored = None
        gc.collect()
        t0 = time.perf_counter()
        scored = score_frame(df)
        frame_s.append(time.perf_counter() - t0)
    assert scored is not None

    rng = random.Random(SEED)
    idx = sorted(rng.sample(range(len(df)), min(sample, len(df))))
    records = df.iloc[idx].to_dict("records")
    converted = [row_to_panel(r) for r in records]
    for panel, context, _ in converted[:500]:  # warm-up
        interpret(panel, context)
    gc.collect()
    statuses: list[str] = []
    t0 = time.perf_counter()
    for panel, context, _ in converted:
        statuses.append(interpret(panel, context).status.value)
    loop_s = time.perf_counter() - t0

    frame_status = scored["b12labs_status"].to_numpy()[idx]
    clean = [i for i, (_, _, dropped) in enumerate(converted) if dropped == 0]
    agree = sum(1 for i in clean if statuses[i] == frame_status[i])
    frame_rps = rows / min(frame_s)
    loop_rps = len(converted) / loop_s
    ratio = frame_rps / loop_rps
    return {
        "rows": rows,
        "sample": len(converted),
        "repeat": repeat,
        "read_s": read_s,
        "score_frame_s": frame_s,
        "score_frame_rows_per_s": frame_rps,
        "interpret_loop_s": loop_s,
        "interpret_loop_rows_per_s": loop_rps,
        "interpret_loop_us_per_row": loop_s / len(converted) * 1e6,
        "ratio": ratio,
        "pass": ratio >= TARGET_IN_MEMORY,
        "sample_rows_with_dropped_cells": len(converted) - len(clean),
        "status_agreement": [agree, len(clean)],
    }


def print_in_memory(r: dict[str, Any]) -> None:
    print(
        f"\n== in_memory: score_frame on {r['rows']:,} rows vs an interpret() loop over "
        f"{r['sample']:,} of them =="
    )
    print(f"(read_csv dtype=str: {r['read_s']:.2f} s, not timed below)")
    print(f"{'path':<46}{'time s':>9}{'rows/s':>13}")
    print(
        f"{'score_frame(df) (best of ' + str(r['repeat']) + ')':<46}{min(r['score_frame_s']):>9.2f}"
        f"{r['score_frame_rows_per_s']:>13,.0f}"
    )
    print(
        f"{'for row in sample: interpret(panel, context)':<46}{r['interpret_loop_s']:>9.2f}"
        f"{r['interpret_loop_rows_per_s']:>13,.0f}   ({r['interpret_loop_us_per_row']:.0f} µs/row)"
    )
    print(
        f"{'ratio score_frame / interpret loop':<46}{r['ratio']:>8.1f}x   target >= {TARGET_IN_MEMORY:.0f}x   "
        f"{_verdict(r['pass'])}"
    )
    agree, clean = r["status_agreement"]
    print(
        f"(sanity: status identical on {agree:,}/{clean:,} sample rows without bad cells; "
        f"{r['sample_rows_with_dropped_cells']:,} sample rows had a bad cell dropped before the loop)"
    )


# --- rss -----------------------------------------------------------------------------------------


def bench_rss(sizes: list[int], keep: bool) -> dict[str, Any]:
    runs = []
    for rows in sizes:
        src = data_file(rows)
        out = DATA / f"out_rss_{rows}.csv"
        m = measure([*_b12labs_cmd(), "score", str(src), "-o", str(out), "--quiet"])
        _cleanup(out, keep)
        runs.append(
            {
                "rows": rows,
                "wall_s": m["wall_s"],
                "rss_bytes": m["maxrss_kb"] * 1024,
                "rows_per_s": rows / m["wall_s"],
            }
        )
    peaks = [r["rss_bytes"] for r in runs]
    spread = max(peaks) / min(peaks) - 1 if peaks else 0.0
    return {
        "runs": runs,
        "spread": spread,
        "each_pass": all(p < TARGET_RSS_BYTES for p in peaks),
        "spread_pass": spread <= TARGET_RSS_SPREAD,
    }


def print_rss(r: dict[str, Any]) -> None:
    print("\n== rss: peak RSS of `b12labs score` (child process, default chunk size) ==")
    print(f"{'input rows':>12}{'peak RSS MB':>14}{'wall s':>9}{'rows/s':>12}   target < 1000 MB")
    for run in r["runs"]:
        print(
            f"{run['rows']:>12,}{run['rss_bytes'] / 1e6:>14.0f}{run['wall_s']:>9.1f}{run['rows_per_s']:>12,.0f}   "
            f"{_verdict(run['rss_bytes'] < TARGET_RSS_BYTES)}"
        )
    print(
        f"{'largest / smallest peak - 1':<38}{r['spread']:>7.1%}   target <= 20 %   {_verdict(r['spread_pass'])}"
    )


# --- engines -------------------------------------------------------------------------------------


def bench_engines(rows: int, workers: int, keep: bool) -> dict[str, Any]:
    src = data_file(rows)
    out: dict[str, Any] = {"rows": rows, "workers": workers, "engines": []}
    for name, extra in (
        ("pandas", ["--engine", "pandas"]),
        (f"dask --workers {workers}", ["--engine", "dask", "--workers", str(workers)]),
    ):
        dst = DATA / f"out_engine_{name.split()[0]}_{rows}.csv"
        m = measure([*_b12labs_cmd(), "score", str(src), "-o", str(dst), "--quiet", *extra])
        lines = count_lines(dst) - 1
        _cleanup(dst, keep)
        out["engines"].append(
            {
                "engine": name,
                "wall_s": m["wall_s"],
                "rows_per_s": rows / m["wall_s"],
                "rss_mb": m["maxrss_kb"] * 1024 / 1e6,
                "output_rows": lines,
            }
        )
    return out


def print_engines(r: dict[str, Any]) -> None:
    print(
        f"\n== engines: `b12labs score` on {r['rows']:,} rows (child process wall time, incl. start-up) =="
    )
    print(
        f"{'engine':<24}{'wall s':>9}{'rows/s':>12}{'peak RSS MB':>13}   (no target: figures only)"
    )
    for e in r["engines"]:
        print(
            f"{e['engine']:<24}{e['wall_s']:>9.1f}{e['rows_per_s']:>12,.0f}{e['rss_mb']:>13.0f}"
            + (
                ""
                if e["output_rows"] == r["rows"]
                else f"   WARNING: {e['output_rows']:,} output rows"
            )
        )
    pandas_rps, dask_rps = (e["rows_per_s"] for e in r["engines"])
    print(
        f"dask / pandas throughput: {dask_rps / pandas_rps:.2f}x "
        "(peak RSS of dask is the largest single process: client or one worker)"
    )


# --- peers ---------------------------------------------------------------------------------------

# (b) the I/O floor of a scorer that reads with pyarrow and writes b12labs' table: read the input
# as b12labs reads it (every column text), then write b12labs' output table (memory-mapped, so
# loading it costs next to nothing) with pyarrow.csv.write_csv
_PYARROW_FLOOR = r"""
import sys, pyarrow as pa, pyarrow.csv as pacsv
src, scored, out = sys.argv[1:4]
with open(src, encoding="utf-8-sig") as fh:
    header = next(iter(fh)).rstrip("\r\n").split(",")
pacsv.read_csv(src, read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
               convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())))
with pa.memory_map(scored) as source:
    table = pa.ipc.open_stream(source).read_all()
pacsv.write_csv(table, out)
"""

_DUCKDB = r"""
import sys, duckdb
duckdb.sql(sys.argv[1])
"""


def duckdb_sql(src: Path, out: Path) -> str:
    """The DuckDB peer: the NICE B12 band and an MMA-elevated status subset, with ``CASE``.

    Thresholds and unit factors come from b12labs' own data (the profile and the unit registry),
    so both sides use the same numbers; censored or unreadable cells are NULL (``TRY_CAST``).
    """
    from b12labs.profiles import load_profile
    from b12labs.units import resolve_unit

    prof = load_profile("nice-ng239-2024")

    def factors(key: str, units: list[str]) -> str:
        return " ".join(f"WHEN '{u}' THEN {resolve_unit(key, u).factor!r}" for u in units)

    low, upper, mma = prof["b12_deficient"], prof["b12_indeterminate_upper"], prof["mma_elevated"]
    band = (
        f"CASE WHEN b12_pmol_l IS NULL THEN 'not_assessed' WHEN b12_pmol_l < {low!r} THEN "
        f"'deficient' WHEN b12_pmol_l <= {upper!r} THEN 'indeterminate' ELSE 'unlikely' END"
    )
    return f"""
    COPY (
      WITH src AS (
        SELECT specimen_id, patient_id,
          TRY_CAST(b12 AS DOUBLE) * CASE b12_unit {factors("b12", ["pg/mL", "ng/L", "pmol/L"])} END
            AS b12_pmol_l,
          TRY_CAST(mma AS DOUBLE) * CASE mma_unit {factors("mma", ["umol/L", "nmol/L", "nmol/mL"])} END
            AS mma_umol_l
        FROM read_csv('{src}', all_varchar = true, header = true)
      )
      SELECT *, {band} AS b12_band,
        coalesce(mma_umol_l > {mma!r}, false) AS mma_elevated,
        CASE WHEN {band} = 'indeterminate' AND mma_umol_l > {mma!r} THEN 'probable'
             ELSE {band} END AS status
      FROM src
    ) TO '{out}' (HEADER, DELIMITER ',')
    """


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _prepare_floor_table(src: Path, rows: int) -> Path:
    """b12labs' complete output table of ``src`` as an uncompressed Arrow IPC stream (untimed).

    A stream, not an IPC file: each chunk keeps its own dictionaries, as b12labs writes them.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    ipc = DATA / f"scored_{rows}.arrow"
    parquet = DATA / f"scored_{rows}.parquet"
    measure([*_b12labs_cmd(), "score", str(src), "-o", str(parquet), "--quiet"])
    pf = pq.ParquetFile(parquet)
    with pa.OSFile(str(ipc), "wb") as sink, pa.ipc.new_stream(sink, pf.schema_arrow) as writer:
        for i in range(pf.num_row_groups):
            writer.write_table(pf.read_row_group(i))
    parquet.unlink(missing_ok=True)
    return ipc


def bench_peers(rows: int, repeat: int, keep: bool) -> dict[str, Any]:
    src = data_file(rows)
    outs: list[Path] = []

    def out(name: str) -> Path:
        outs.append(DATA / f"out_{name}_{rows}.csv")
        return outs[-1]

    cmds: dict[str, list[str] | None] = {
        "pandas": [sys.executable, "-c", _PANDAS_COPY, str(src), str(out("pandas"))],
        "score": [*_b12labs_cmd(), "score", str(src), "-o", str(out("score")), "--quiet"],
        "score_columns": [
            *_b12labs_cmd(),
            "score",
            str(src),
            "-o",
            str(out("score_columns")),
            "--quiet",
            "--columns",
            NARROW_COLUMNS,
        ],
    }
    skipped: dict[str, str] = {}
    ipc: Path | None = None
    if _have("pyarrow"):
        ipc = _prepare_floor_table(src, rows)
        cmds["pyarrow_floor"] = [
            sys.executable, "-c", _PYARROW_FLOOR, str(src), str(ipc), str(out("pyarrow")),
        ]
    else:
        skipped["pyarrow_floor"] = "pyarrow is not installed (pip install 'b12labs[parquet]')"
    if _have("duckdb"):
        cmds["duckdb"] = [sys.executable, "-c", _DUCKDB, duckdb_sql(src, out("duckdb"))]
    else:
        skipped["duckdb"] = "duckdb is not installed (pip install -e '.[bench]')"
    runs: dict[str, list[float]] = {name: [] for name, cmd in cmds.items() if cmd}
    rss: dict[str, float] = {}
    order = list(runs)
    for i in range(repeat):  # rotate the order: a noisy neighbour or cold cache hits every peer
        for name in order[i % len(order) :] + order[: i % len(order)]:
            r = measure(cmds[name] or [])
            runs[name].append(r["wall_s"])
            rss[name] = max(rss.get(name, 0.0), r["maxrss_kb"] * 1024 / 1e6)
    out_rows = {
        "score": count_lines(DATA / f"out_score_{rows}.csv") - 1,
        "score_columns": count_lines(DATA / f"out_score_columns_{rows}.csv") - 1,
    }
    for p in outs:
        _cleanup(p, keep)
    if ipc is not None:
        _cleanup(ipc, keep)
    best = {name: min(v) for name, v in runs.items()}
    ratios: dict[str, Any] = {}
    if "pyarrow_floor" in best:
        x = best["score"] / best["pyarrow_floor"]
        ratios["score_vs_floor"] = {"ratio": x, "pass": x <= TARGET_PEERS}
    if "duckdb" in best:
        x = best["score_columns"] / best["duckdb"]
        ratios["columns_vs_duckdb"] = {"ratio": x, "pass": x <= TARGET_PEERS}
    return {
        "rows": rows,
        "repeat": repeat,
        "runs_s": runs,
        "best_s": best,
        "rss_mb": rss,
        "skipped": skipped,
        "ratios": ratios,
        "output_rows": out_rows,
    }


_PEER_LABELS = {
    "pandas": "(a) pandas.read_csv + to_csv",
    "pyarrow_floor": "(b) pyarrow floor: read input, write b12labs table",
    "duckdb": "(c) DuckDB SQL: band + MMA status, narrow CSV",
    "score": "(d) b12labs score (default columns)",
    "score_columns": f"(d) b12labs score --columns {NARROW_COLUMNS}",
}


def print_peers(r: dict[str, Any]) -> None:
    print(f"\n== peers: {r['rows']:,}-row wide CSV, best of {r['repeat']} child runs each ==")
    print(f"{'child process':<66}{'best s':>8}{'rows/s':>12}{'peak RSS MB':>13}   all runs (s)")
    for name, label in _PEER_LABELS.items():
        if name in r["skipped"]:
            print(f"{label:<66}  skipped: {r['skipped'][name]}")
            continue
        t = r["best_s"][name]
        print(
            f"{label:<66}{t:>8.2f}{r['rows'] / t:>12,.0f}{r['rss_mb'][name]:>13.0f}   "
            + ", ".join(f"{x:.2f}" for x in r["runs_s"][name])
        )
    for key, label in (
        ("score_vs_floor", "ratio score default / pyarrow floor"),
        ("columns_vs_duckdb", "ratio score --columns / DuckDB"),
    ):
        if key in r["ratios"]:
            x = r["ratios"][key]
            print(f"{label:<66}{x['ratio']:>7.2f}x   target <= {TARGET_PEERS}   {_verdict(x['pass'])}")
        else:
            print(f"{label:<66}  not measured (a peer was skipped)")
    for name, n in r["output_rows"].items():
        if n != r["rows"]:
            print(f"  WARNING: {name} output has {n:,} data lines for {r['rows']:,} input rows")


# --- main ----------------------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated row counts, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("row counts must be >= 1")
    return sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--rows", type=int, default=1_000_000, help="rows for end_to_end, in_memory, engines"
    )
    p.add_argument(
        "--rss-rows",
        type=_sizes,
        default=[1_000_000, 5_000_000],
        help="comma-separated row counts for rss (default 1000000,5000000)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"sub-benchmarks to run, comma-separated or repeated: {', '.join(PARTS)}",
    )
    p.add_argument(
        "--sample", type=int, default=20_000, help="in_memory: rows of the interpret() loop"
    )
    p.add_argument(
        "--repeat", type=int, default=2, help="end_to_end/in_memory: runs each, best kept"
    )
    p.add_argument("--workers", type=int, default=2, help="engines: dask workers")
    p.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the scored output files in benchmarks/_data/ (inputs are always kept)",
    )
    p.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = p.parse_args(argv)
    parts = [s.strip() for item in args.only for s in item.split(",") if s.strip()] or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"unknown sub-benchmark(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if args.rows < 1 or args.sample < 1 or args.repeat < 1:
        p.error("--rows, --sample and --repeat must be >= 1")

    results: dict[str, Any] = {}
    started = time.perf_counter()
    if "end_to_end" in parts:
        results["end_to_end"] = r = bench_end_to_end(args.rows, args.repeat, args.keep_data)
        print_end_to_end(r)
    if "in_memory" in parts:
        results["in_memory"] = r = bench_in_memory(args.rows, args.sample, args.repeat)
        print_in_memory(r)
    if "rss" in parts:
        results["rss"] = r = bench_rss(args.rss_rows, args.keep_data)
        print_rss(r)
    if "engines" in parts:
        results["engines"] = r = bench_engines(args.rows, args.workers, args.keep_data)
        print_engines(r)
    if "peers" in parts:
        results["peers"] = r = bench_peers(args.rows, args.repeat, args.keep_data)
        print_peers(r)
    print(f"\nbatch_bench: {', '.join(parts)} in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
