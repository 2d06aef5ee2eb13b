"""Results over time (docs/clinical-logic.md §8): what history costs, as ratios measured in one run.

Targets (issue "Results over time"):

- ``interpret()`` with 10 history entries: median <= 2x its median without history;
- ``score_long`` on a long export with history: rows/s >= 0.5x the same export scored
  without history (``history=False``);
- ``b12labs score`` on a long export: peak RSS flat from 1M to 5M rows, < 1 GB
  (``--rss-rows``; the 5M-row file is generated once into benchmarks/_data, ~4 minutes).

Each pair is timed in alternating blocks on the same data, so drift on a shared machine hits
both sides. No test asserts a timing.

    .venv/bin/python benchmarks/serial_bench.py                       # interpret + score_long
    .venv/bin/python benchmarks/serial_bench.py --rss-rows 1000000,5000000
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from interpret_bench import make_panels  # noqa: E402
from make_data import write_long  # noqa: E402

TARGET_INTERPRET_RATIO = 2.0
TARGET_LONG_RATIO = 0.5
TARGET_RSS_MB = 1024.0
DATA = HERE / "_data"
NOW = "2026-10-01T10:00"


def _history(panel: dict[str, Any], rng: random.Random, n: int) -> list[dict[str, Any]]:
    """``n`` earlier results of the same analytes, one every 30-70 days before NOW."""
    out = []
    days = 0
    for _ in range(n):
        days += rng.randint(30, 70)
        when = time.strftime("%Y-%m-%dT10:00", time.gmtime(time.mktime((2026, 10, 1, 10, 0, 0, 0, 0, 0)) - days * 86400))
        entry: dict[str, Any] = {"collected_at": when}
        for key in ("b12", "hb", "mcv", "folate", "ferritin"):
            if key in panel:
                m = panel[key]
                entry[key] = {"value": round(m["value"] * rng.uniform(0.7, 1.3), 1), "unit": m["unit"]}
        out.append(entry)
    return out


def bench_interpret(n: int, entries: int, blocks: int, seed: int) -> dict[str, Any]:
    from b12labs import interpret

    rng = random.Random(seed)
    items = []
    for panel, context in make_panels(n, seed):
        ctx = dict(context or {})
        ctx["collected_at"] = NOW
        items.append((panel, ctx, _history(panel, rng, entries)))
    for panel, ctx, hist in items[:300]:  # warm-up
        interpret(panel, ctx)
        interpret(panel, ctx, history=hist)
    ns: dict[str, list[int]] = {"without": [], "with": []}
    size = max(1, n // blocks)
    clock = time.perf_counter_ns
    gc.collect()
    for b in range(0, n, size):
        chunk = items[b : b + size]
        order = ("without", "with") if (b // size) % 2 == 0 else ("with", "without")
        for name in order:
            for panel, ctx, hist in chunk:
                t0 = clock()
                if name == "with":
                    interpret(panel, ctx, history=hist)
                else:
                    interpret(panel, ctx)
                ns[name].append(clock() - t0)
    med = {k: statistics.median(v) / 1000 for k, v in ns.items()}
    ratio = med["with"] / med["without"]
    return {
        "panels": n,
        "history_entries": entries,
        "median_us_without": med["without"],
        "median_us_with": med["with"],
        "ratio": ratio,
        "pass": ratio <= TARGET_INTERPRET_RATIO,
    }


def _long_file(patients: int, seed: int) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"long_{patients}p.csv"
    if not path.exists():
        write_long(path, patients, seed)
    return path


def bench_long(patients: int, seed: int, repeats: int) -> dict[str, Any]:
    import pandas as pd

    from b12labs.batch import score_long

    path = _long_file(patients, seed)
    df = pd.read_csv(path, dtype="string", keep_default_na=False)
    rows = len(df)
    times: dict[str, list[float]] = {"without": [], "with": []}
    for r in range(repeats):
        order = ("without", "with") if r % 2 == 0 else ("with", "without")
        for name in order:
            gc.collect()
            t0 = time.perf_counter()
            scored, _ = score_long(df, history=name == "with")
            times[name].append(time.perf_counter() - t0)
    serial = scored["b12labs_codes"].astype(str)
    best = {k: min(v) for k, v in times.items()}
    ratio = (rows / best["with"]) / (rows / best["without"])
    return {
        "rows": rows,
        "episodes": len(scored),
        "rows_per_s_without": rows / best["without"],
        "rows_per_s_with": rows / best["with"],
        "ratio": ratio,
        "episodes_with_serial_codes": int(
            serial.str.contains("RETEST_TOO_SOON|B12_SIGNIFICANT|PREVIOUS_DEFICIENCY|RESULT_CONFLICT").sum()
        ),
        "pass": ratio >= TARGET_LONG_RATIO,
    }


def bench_rss(row_targets: list[int], seed: int) -> dict[str, Any]:
    """Peak RSS of ``b12labs score`` on long exports of about each row count (a child process
    per run, so each figure is that run's own)."""
    out: dict[str, Any] = {"runs": []}
    b12labs = Path(sys.executable).with_name("b12labs")
    for target in row_targets:
        patients = max(1, round(target / 8.47))  # write_long gives about 8.5 rows a patient
        path = _long_file(patients, seed)
        dest = DATA / "long_scored.csv"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run([str(b12labs), "score", str(path), "-o", str(dest), "--format", "long"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        dest.unlink(missing_ok=True)
        Path(str(dest).replace(".csv", ".rejects.csv")).unlink(missing_ok=True)
        with open(path, encoding="utf-8") as fh:
            rows = sum(1 for _ in fh) - 1
        out["runs"].append({"rows": rows, "rc": proc.returncode, "wall_s": wall,
                            "peak_rss_mb": max(after, before) / 1024})
    peaks = [r["peak_rss_mb"] for r in out["runs"]]
    out["pass"] = all(r["rc"] == 0 for r in out["runs"]) and max(peaks) < TARGET_RSS_MB
    out["flat"] = len(peaks) < 2 or peaks[-1] <= 1.25 * peaks[0]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--panels", type=int, default=4000)
    p.add_argument("--entries", type=int, default=10)
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--patients", type=int, default=24000, help="long export size (~8.5 rows each)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--rss-rows", default="", help="comma-separated row counts, e.g. 1000000,5000000")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--only", default="interpret,long", help="interpret,long[,rss]")
    p.add_argument("--json", type=Path)
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    parts = set(args.only.split(","))
    if args.rss_rows:
        parts.add("rss")
    result: dict[str, Any] = {}
    lines = []
    if "interpret" in parts:
        r = result["interpret"] = bench_interpret(args.panels, args.entries, args.blocks, args.seed)
        lines.append((f"interpret() median, {args.entries} history entries / none",
                      f"{r['median_us_with']:.0f} / {r['median_us_without']:.0f} us = {r['ratio']:.2f}x",
                      f"<= {TARGET_INTERPRET_RATIO}x", r["pass"]))
    if "long" in parts:
        r = result["long"] = bench_long(args.patients, args.seed, args.repeats)
        lines.append((f"score_long rows/s with history / without ({r['rows']} rows)",
                      f"{r['rows_per_s_with']:.0f} / {r['rows_per_s_without']:.0f} = {r['ratio']:.2f}x",
                      f">= {TARGET_LONG_RATIO}x", r["pass"]))
    if "rss" in parts and args.rss_rows:
        r = result["rss"] = bench_rss([int(x) for x in args.rss_rows.split(",")], args.seed)
        for run in r["runs"]:
            lines.append((f"b12labs score long, {run['rows']} rows: peak RSS",
                          f"{run['peak_rss_mb']:.0f} MB ({run['wall_s']:.0f} s)",
                          f"< {TARGET_RSS_MB:.0f} MB", run["rc"] == 0 and run["peak_rss_mb"] < TARGET_RSS_MB))
        lines.append(("peak RSS flat (largest <= 1.25x smallest)", "", "", r["flat"]))
    print(f"{'measure':<62}{'value':>34}{'target':>10}  verdict")
    for name, value, target, ok in lines:
        print(f"{name:<62}{value:>34}{target:>10}  {'PASS' if ok else 'MISS'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    missed = [n for n, _, _, ok in lines if not ok]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
