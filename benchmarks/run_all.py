"""Run every benchmark (``make bench``) and print one summary of the targets.

Each benchmark runs as its own child process (the same command you would type to run it
alone), so one crashing does not hide the others:

1. ``interpret_bench.py``: ``interpret()`` against the naive pint + pydantic baseline (issue 3);
2. ``batch_bench.py``: end_to_end, in_memory, rss and engines (issue 4);
3. ``serial_bench.py``: results over time (interpret() with history, score_long with history);
4. ``service_bench.py`` if it exists and supports ``--quick`` (issue 5); skipped otherwise.

    .venv/bin/python benchmarks/run_all.py            # full size: 1M rows, RSS on 1M and 5M
    .venv/bin/python benchmarks/run_all.py --quick    # 200k rows, RSS on 200k and 1M

Figures are ratios against baselines measured in the same run; nothing here is a test. The exit
status is non-zero when a benchmark fails to run, or (with ``--strict``) when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _run(name: str, args: list[str]) -> int:
    cmd = [sys.executable, str(HERE / name), *args]
    print(f"\n{'=' * 100}\n$ {' '.join(cmd)}\n{'=' * 100}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, check=False).returncode
    print(f"[{name}: exit {rc} after {time.perf_counter() - t0:.0f} s]", flush=True)
    return rc


def _supports(script: Path, flag: str) -> bool:
    try:
        out = subprocess.run(
            [sys.executable, str(script), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and flag in out.stdout


def _load(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return {}


def _v(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def summary_rows(interp: dict[str, Any], batch: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(measure, value, target, passed) for every target of issues 3 and 4 that was measured."""
    rows: list[tuple[str, str, str, bool]] = []
    if interp:
        rows.append(
            (
                "interpret / naive baseline throughput",
                f"{interp['ratio']:.2f}x",
                ">= 3x",
                interp["ratio_pass"],
            )
        )
        rows.append(
            (
                "interpret median µs per panel",
                f"{interp['interpret']['median_us']:.0f} µs",
                "<= 150 µs",
                interp["median_pass"],
            )
        )
    if "end_to_end" in batch:
        e = batch["end_to_end"]
        rows.append(
            (
                f"score / pandas read+write ({e['rows']:,} rows)",
                f"{e['ratio']:.2f}x",
                "<= 2.0",
                e["pass"],
            )
        )
    if "in_memory" in batch:
        m = batch["in_memory"]
        rows.append(
            (
                f"score_frame / interpret loop ({m['rows']:,} rows)",
                f"{m['ratio']:.1f}x",
                ">= 50x",
                m["pass"],
            )
        )
    if "peers" in batch:
        peer = batch["peers"]
        for key, label in (
            ("score_vs_floor", "score / pyarrow floor"),
            ("columns_vs_duckdb", "score --columns / DuckDB"),
        ):
            if key in peer["ratios"]:
                x = peer["ratios"][key]
                rows.append((f"{label} ({peer['rows']:,} rows)", f"{x['ratio']:.2f}x", "<= 1.5", x["pass"]))
    if "rss" in batch:
        r = batch["rss"]
        for run in r["runs"]:
            rows.append(
                (
                    f"peak RSS, {run['rows']:,} rows",
                    f"{run['rss_bytes'] / 1e6:.0f} MB",
                    "< 1000 MB",
                    run["rss_bytes"] < 1_000_000_000,
                )
            )
        rows.append(("peak RSS spread", f"{r['spread']:.1%}", "<= 20 %", r["spread_pass"]))
    return rows


def serial_rows(serial: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Summary rows of serial_bench.py (results over time)."""
    rows: list[tuple[str, str, str, bool]] = []
    if "interpret" in serial:
        r = serial["interpret"]
        rows.append(("interpret() 10 history entries / none", f"{r['ratio']:.2f}x", "<= 2x", r["pass"]))
    if "long" in serial:
        r = serial["long"]
        rows.append(("score_long rows/s with / without history", f"{r['ratio']:.2f}x", ">= 0.5x", r["pass"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="smaller sizes: 200k rows, RSS on 200k and 1M rows"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    args = p.parse_args(argv)

    started = time.perf_counter()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="b12labs-bench-") as tmp:
        interp_json = Path(tmp) / "interpret.json"
        batch_json = Path(tmp) / "batch.json"
        interp_args = ["--json", str(interp_json)] + (
            ["--panels", "5000", "--no-profile"] if args.quick else []
        )
        if _run("interpret_bench.py", interp_args) != 0:
            failed.append("interpret_bench.py")
        batch_args = ["--json", str(batch_json)]
        if args.quick:
            batch_args += ["--rows", "200000", "--rss-rows", "200000,1000000", "--sample", "5000"]
        if _run("batch_bench.py", batch_args) != 0:
            failed.append("batch_bench.py")

        serial_json = Path(tmp) / "serial.json"
        serial_args = ["--json", str(serial_json)] + (
            ["--panels", "2000", "--patients", "8000"] if args.quick else []
        )
        if _run("serial_bench.py", serial_args) != 0:
            failed.append("serial_bench.py")

        service = HERE / "service_bench.py"
        if not service.exists():
            print("\n[service_bench.py not found: skipped]")
        elif not _supports(service, "--quick"):
            print(
                "\n[service_bench.py does not support --quick: skipped "
                "(run it alone: .venv/bin/python benchmarks/service_bench.py)]"
            )
        elif _run("service_bench.py", ["--quick"]) != 0:
            failed.append("service_bench.py")

        rows = summary_rows(_load(interp_json), _load(batch_json))
        rows += serial_rows(_load(serial_json))

    print(
        f"\n{'=' * 100}\nSummary ({'quick' if args.quick else 'full size'}, "
        f"{time.perf_counter() - started:.0f} s)"
    )
    print(f"{'measure':<48}{'value':>14}{'target':>12}  verdict")
    for measure, value, target, ok in rows:
        print(f"{measure:<48}{value:>14}{target:>12}  {_v(ok)}")
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}")
        return 2
    if args.strict and not all(ok for *_, ok in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
