"""Benchmark of ``b12labs.interpret()`` against a naive pint + pydantic baseline (issue 3).

20 000 realistic, seeded panels (B12 in pg/mL, ng/L or pmol/L; MMA in µmol/L or nmol/L;
homocysteine; MCV; Hb in g/dL or g/L; ferritin; folate in ng/mL or nmol/L; patient context
some of the time) go, in the same run, through

* ``interpret(panel, context)``: the library, every rule of the catalogue, evidence, comment;
* the **naive baseline** of the issue: per row ``pint.Quantity(value, unit_string)`` with ONE
  shared ``pint.UnitRegistry()``, ``.to(canonical)`` (the ``chemistry`` context with
  ``mw=Q_(molar_mass, "g/mol")`` for mass -> molar), a pydantic model of the six main analytes
  (B12, MMA, homocysteine, MCV, Hb, folate), and a plain if-chain for the B12 band.

Both see the same values (``{"value": float, "unit": str}`` per analyte). Each call is timed
with ``perf_counter_ns`` after a warm-up; the two are timed in alternating blocks so a noisy
neighbour hurts both alike. Printed: panels/s, median and p90 µs per panel, and the ratio
``interpret throughput / baseline throughput``.

Targets (issue 3): ratio >= 3x, median <= 150 µs per panel. Timings are never asserted in tests.

    .venv/bin/python benchmarks/interpret_bench.py
    .venv/bin/python benchmarks/interpret_bench.py --panels 5000 --cprofile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

TARGET_RATIO = 3.0
TARGET_MEDIAN_US = 150.0

Panel = dict[str, dict[str, Any]]
Context = dict[str, Any] | None

MEDICATIONS = [
    "metformin 500 mg",
    "omeprazole 20 mg",
    "methotrexate 15 mg weekly",
    "adalimumab",
    "folic acid 5 mg",
    "atorvastatin",
    "lansoprazole",
    "colchicine",
]
SYMPTOMS = [
    "fatigue",
    "paraesthesia",
    "numbness",
    "glossitis",
    "gait_disturbance",
    "cognitive_impairment",
    "mood_change",
]


# --- realistic panels ----------------------------------------------------------------------------


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return math.exp(rng.gauss(math.log(median), sigma))


def make_panels(n: int, seed: int = 3) -> list[tuple[Panel, Context]]:
    """``n`` seeded (panel, context) pairs with mixed units, as a multi-site export mixes them."""
    rng = random.Random(seed)
    out: list[tuple[Panel, Context]] = []
    for _ in range(n):
        panel: Panel = {}
        b12_pmol = _lognormal(rng, 300, 0.5)
        b12_unit = rng.choices(["pg/mL", "ng/L", "pmol/L"], [0.5, 0.3, 0.2])[0]
        b12 = b12_pmol if b12_unit == "pmol/L" else b12_pmol * 1.3554
        panel["b12"] = {"value": float(round(b12)), "unit": b12_unit}
        if rng.random() < 0.35:
            mma_umol = _lognormal(rng, 0.25, 0.45)
            if rng.random() < 0.4:
                panel["mma"] = {"value": float(round(mma_umol * 1000)), "unit": "nmol/L"}
            else:
                panel["mma"] = {
                    "value": round(mma_umol, 2),
                    "unit": rng.choice(["µmol/L", "umol/L"]),
                }
        if rng.random() < 0.25:
            panel["homocysteine"] = {"value": round(_lognormal(rng, 11, 0.35), 1), "unit": "umol/L"}
        if rng.random() < 0.8:
            panel["mcv"] = {"value": round(rng.gauss(91, 7), 1), "unit": "fL"}
        if rng.random() < 0.8:
            hb_gl = rng.gauss(135, 16)
            if rng.random() < 0.45:
                panel["hb"] = {"value": round(hb_gl / 10, 1), "unit": "g/dL"}
            else:
                panel["hb"] = {"value": float(round(hb_gl)), "unit": "g/L"}
        if rng.random() < 0.4:
            panel["ferritin"] = {
                "value": float(round(_lognormal(rng, 70, 0.9))),
                "unit": rng.choice(["ng/mL", "ug/L"]),
            }
        if rng.random() < 0.4:
            folate_nmol = _lognormal(rng, 18, 0.5)
            if rng.random() < 0.5:
                panel["folate"] = {"value": round(folate_nmol / 2.266, 1), "unit": "ng/mL"}
            else:
                panel["folate"] = {"value": round(folate_nmol, 1), "unit": "nmol/L"}
        context: Context = None
        if rng.random() < 0.7:
            context = {}
            if rng.random() < 0.85:
                context["age"] = int(min(99, max(16, rng.gauss(55, 18))))
            if rng.random() < 0.9:
                context["sex"] = rng.choice(["female", "male"])
            if rng.random() < 0.35:
                context["medications"] = rng.sample(MEDICATIONS, rng.randint(1, 2))
            if rng.random() < 0.3:
                context["symptoms"] = rng.sample(SYMPTOMS, rng.randint(1, 2))
        out.append((panel, context))
    return out


# --- the naive baseline of issue 3 ---------------------------------------------------------------


def make_baseline() -> Callable[[Panel, Context], tuple[str, dict[str, float]]]:
    """The issue's naive per-row pipeline: pint per value, pydantic model, if-chain."""
    import pint
    from pydantic import BaseModel, ConfigDict, Field

    ureg: Any = pint.UnitRegistry()  # ONE shared registry
    q_ = ureg.Quantity
    canonical = {  # key -> (canonical unit, molar mass g/mol or None)
        "b12": ("pmol/L", 1355.37),
        "mma": ("umol/L", 118.09),
        "homocysteine": ("umol/L", 135.18),
        "mcv": ("fL", None),
        "hb": ("g/L", None),
        "folate": ("nmol/L", 441.4),
    }

    class NaivePanel(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")

        b12: float | None = Field(default=None, ge=0)
        mma: float | None = Field(default=None, ge=0)
        homocysteine: float | None = Field(default=None, ge=0)
        mcv: float | None = Field(default=None, ge=0)
        hb: float | None = Field(default=None, ge=0)
        folate: float | None = Field(default=None, ge=0)

    def baseline(panel: Panel, context: Context) -> tuple[str, dict[str, float]]:
        values: dict[str, float] = {}
        for key, (target, molar_mass) in canonical.items():
            m = panel.get(key)
            if m is None:
                continue
            q = q_(m["value"], m["unit"])  # ureg.Quantity: the shared registry
            if molar_mass is not None and m["unit"].split("/")[0].endswith("g"):  # mass -> molar
                values[key] = q.to(target, "chemistry", mw=q_(molar_mass, "g/mol")).magnitude
            else:
                values[key] = q.to(target).magnitude
        model = NaivePanel(**values)
        b12 = model.b12  # NICE NG239 bands, pmol/L
        if b12 is None:
            band = "not_assessed"
        elif b12 < 133:
            band = "deficient"
        elif b12 < 258:
            band = "indeterminate"
        elif b12 > 674:
            band = "high"
        else:
            band = "normal"
        return band, values

    return baseline


# --- timing --------------------------------------------------------------------------------------


def _time_block(
    fn: Callable[[Panel, Context], Any], items: Sequence[tuple[Panel, Context]], out: list[int]
) -> float:
    """Call ``fn`` on every item, appending per-call ns to ``out``; returns the block's wall s."""
    clock = time.perf_counter_ns
    start = clock()
    for panel, context in items:
        t0 = clock()
        fn(panel, context)
        out.append(clock() - t0)
    return (clock() - start) / 1e9


def _stats(per_call_ns: list[int], wall_s: float) -> dict[str, float]:
    us = sorted(x / 1000 for x in per_call_ns)
    return {
        "panels": len(us),
        "wall_s": wall_s,
        "panels_per_s": len(us) / wall_s,
        "median_us": statistics.median(us),
        "p90_us": us[int(0.9 * (len(us) - 1))],
        "p99_us": us[int(0.99 * (len(us) - 1))],
    }


def _string_cells(items: Sequence[tuple[Panel, Context]]) -> list[tuple[dict[str, Any], Context]]:
    return [({k: f"{m['value']:g} {m['unit']}" for k, m in p.items()}, c) for p, c in items]


def cross_check(
    items: Sequence[tuple[Panel, Context]],
    interpret: Callable[..., Any],
    baseline: Callable[[Panel, Context], tuple[str, dict[str, float]]],
) -> float:
    """Largest relative difference between the two pipelines' canonical values (sanity check)."""
    worst = 0.0
    for panel, context in items:
        values = interpret(panel, context).values
        _, base = baseline(panel, context)
        for key, v in base.items():
            if key in values and v:
                worst = max(worst, abs(values[key] - v) / abs(v))
    return worst


def profile_interpret(items: Sequence[tuple[Panel, Context]], top: int = 20) -> str:
    """cProfile of ``interpret()`` over ``items``: the top functions by own and cumulative time."""
    from b12labs import interpret

    prof = cProfile.Profile()
    prof.enable()
    for panel, context in items:
        interpret(panel, context)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs()
    buf.write(f"--- cProfile of interpret() over {len(items)} panels: top {top} by own time ---\n")
    stats.sort_stats("tottime").print_stats(top)
    buf.write(f"--- top {top} by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def run(n: int, seed: int, warmup: int, blocks: int, string_cells: bool) -> dict[str, Any]:
    from b12labs import interpret

    baseline = make_baseline()
    items = make_panels(n, seed)
    warm = make_panels(warmup, seed + 1)
    # warm-up: caches (unit factors, medication matches, pint's parser), code paths, allocator
    max_rel_diff = cross_check(warm, interpret, baseline)
    str_warm = _string_cells(warm)
    for panel, context in str_warm:
        interpret(panel, context)

    size = math.ceil(n / blocks)
    chunks = [items[i : i + size] for i in range(0, n, size)]
    str_chunks = [_string_cells(c) for c in chunks] if string_cells else []
    ns: dict[str, list[int]] = {"interpret": [], "baseline": [], "interpret_str": []}
    wall = dict.fromkeys(ns, 0.0)
    gc.collect()
    for i, chunk in enumerate(chunks):  # alternate so drift on a shared machine hits both
        order = ("interpret", "baseline") if i % 2 == 0 else ("baseline", "interpret")
        for name in order:
            fn: Callable[[Panel, Context], Any] = interpret if name == "interpret" else baseline
            wall[name] += _time_block(fn, chunk, ns[name])
        if string_cells:
            wall["interpret_str"] += _time_block(interpret, str_chunks[i], ns["interpret_str"])

    result: dict[str, Any] = {
        "panels": n,
        "seed": seed,
        "blocks": len(chunks),
        "interpret": _stats(ns["interpret"], wall["interpret"]),
        "baseline": _stats(ns["baseline"], wall["baseline"]),
        "max_rel_diff_canonical": max_rel_diff,
    }
    if string_cells:
        result["interpret_str"] = _stats(ns["interpret_str"], wall["interpret_str"])
    ratio = result["interpret"]["panels_per_s"] / result["baseline"]["panels_per_s"]
    result["ratio"] = ratio
    result["ratio_pass"] = ratio >= TARGET_RATIO
    result["median_pass"] = result["interpret"]["median_us"] <= TARGET_MEDIAN_US
    return result


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(r: dict[str, Any]) -> None:
    print(
        f"\n== interpret_bench: {r['panels']:,} panels (seed {r['seed']}, {r['blocks']} alternating blocks) =="
    )
    header = f"{'pipeline':<34}{'panels/s':>12}{'median µs':>12}{'p90 µs':>10}{'p99 µs':>10}"
    print(header)
    print("-" * len(header))
    rows = [
        ("interpret() (value/unit mappings)", r["interpret"]),
        ("naive pint + pydantic baseline", r["baseline"]),
    ]
    if "interpret_str" in r:
        rows.append(('interpret() ("250 pg/mL" strings)', r["interpret_str"]))
    for name, s in rows:
        print(
            f"{name:<34}{s['panels_per_s']:>12,.0f}{s['median_us']:>12.1f}{s['p90_us']:>10.1f}{s['p99_us']:>10.1f}"
        )
    print()
    print(f"{'measure':<44}{'value':>12}{'target':>12}  verdict")
    print(
        f"{'ratio interpret / baseline (throughput)':<44}{r['ratio']:>11.2f}x{'>= 3.0x':>12}  {_verdict(r['ratio_pass'])}"
    )
    print(
        f"{'median µs per panel (interpret)':<44}{r['interpret']['median_us']:>12.1f}{'<= 150':>12}  {_verdict(r['median_pass'])}"
    )
    print(
        f"(sanity: largest relative difference of canonical values, interpret vs baseline: "
        f"{r['max_rel_diff_canonical']:.2e})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--panels", type=int, default=20_000, help="panels timed through each pipeline")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument(
        "--warmup", type=int, default=1_000, help="untimed warm-up panels (also cross-checked)"
    )
    p.add_argument("--blocks", type=int, default=10, help="alternating timing blocks")
    p.add_argument(
        "--no-string-cells",
        action="store_true",
        help="skip the informative interpret() run on '250 pg/mL' string cells",
    )
    p.add_argument("--cprofile", action="store_true", help="always print a cProfile of interpret()")
    p.add_argument("--no-profile", action="store_true", help="never profile, even on a MISS")
    p.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = p.parse_args(argv)
    if args.panels < 1 or args.blocks < 1:
        p.error("--panels and --blocks must be >= 1")

    r = run(args.panels, args.seed, args.warmup, args.blocks, not args.no_string_cells)
    print_report(r)
    missed = not (r["ratio_pass"] and r["median_pass"])
    if args.cprofile or (missed and not args.no_profile):
        print("\ninterpret() missed a target: profiling it" if missed else "")
        print(profile_interpret(make_panels(min(args.panels, 5_000), args.seed)))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
