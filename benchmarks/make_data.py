"""Generate realistic synthetic B12 work-up exports (wide and long) for demos and benchmarks.

Values follow plausible adult distributions, units are mixed the way real multi-site exports
mix them, and a fraction of cells is deliberately bad (non-numeric text, censored values,
decimal commas, wrong units) so the scorer's error path is exercised. Synthetic: no real
patient data.

    python benchmarks/make_data.py wide out.csv --rows 1000000 --bad 0.01
    python benchmarks/make_data.py long out.csv --patients 2000
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
from pathlib import Path

import numpy as np

WIDE_COLUMNS = [
    "specimen_id", "patient_id", "age", "sex", "b12", "b12_unit", "mma", "mma_unit",
    "homocysteine (umol/L)", "mcv", "hb", "hb_unit", "ferritin_ng_ml", "folate", "folate_unit",
    "egfr", "medications", "symptoms",
]
MEDS = ["", "", "", "", "metformin 500 mg", "omeprazole 20 mg", "methotrexate 15 mg weekly",
        "adalimumab", "folic acid 5 mg", "atorvastatin", "metformin;omeprazole", "hydroxyurea"]
SYMPTOMS = ["", "", "", "", "", "fatigue", "paraesthesia", "numbness;fatigue", "neck_pain",
            "glossitis", "gait_disturbance", "myoclonus"]
BAD = ["hemolysed", "QNS", "see comment", "<<50", "n/a?", "12,5"]


def wide_rows(n: int, bad: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b12_pmol = np.exp(rng.normal(np.log(300), 0.5, n))
    b12_unit = rng.choice(["pg/mL", "ng/L", "pmol/L"], n, p=[0.5, 0.3, 0.2])
    b12 = np.where(b12_unit == "pmol/L", b12_pmol, b12_pmol * 1.3554)
    b12_txt = np.char.mod("%.0f", b12).astype(object)
    censored = rng.random(n) < 0.01
    b12_txt[censored] = np.where(rng.random(censored.sum()) < 0.5, "<100", ">2000")
    b12_missing = rng.random(n) < 0.05
    b12_txt[b12_missing] = ""
    has_mma = rng.random(n) < 0.35
    mma_umol = np.exp(rng.normal(np.log(0.25), 0.45, n))
    mma_unit = rng.choice(["umol/L", "nmol/L", "nmol/mL"], n, p=[0.5, 0.35, 0.15])
    mma_val = np.where(mma_unit == "nmol/L", mma_umol * 1000, mma_umol)
    mma_txt = np.where(has_mma, np.char.mod("%.3g", mma_val).astype(object), "")
    mma_unit = np.where(has_mma, mma_unit, "")
    hcy = np.where(rng.random(n) < 0.25, np.char.mod("%.1f", np.exp(rng.normal(np.log(11), 0.35, n))).astype(object), "")
    mcv = np.where(rng.random(n) < 0.8, np.char.mod("%.1f", rng.normal(91, 7, n)).astype(object), "")
    hb_gl = rng.normal(135, 16, n)
    hb_unit = rng.choice(["g/L", "g/dL", "mmol/L"], n, p=[0.5, 0.4, 0.1])
    hb_val = np.where(hb_unit == "g/dL", hb_gl / 10, np.where(hb_unit == "mmol/L", hb_gl / 16.114, hb_gl))
    hb_has = rng.random(n) < 0.8
    hb = np.where(hb_has, np.char.mod("%.1f", hb_val).astype(object), "")
    hb_unit = np.where(hb_has, hb_unit, "")
    ferritin = np.where(rng.random(n) < 0.4, np.char.mod("%.0f", np.exp(rng.normal(np.log(70), 0.9, n))).astype(object), "")
    folate_has = rng.random(n) < 0.4
    folate_unit = rng.choice(["ng/mL", "nmol/L"], n)
    folate_nmol = np.exp(rng.normal(np.log(18), 0.5, n))
    folate_val = np.where(folate_unit == "ng/mL", folate_nmol / 2.266, folate_nmol)
    folate = np.where(folate_has, np.char.mod("%.1f", folate_val).astype(object), "")
    folate_unit = np.where(folate_has, folate_unit, "")
    egfr = np.where(rng.random(n) < 0.3, np.char.mod("%.0f", np.clip(rng.normal(80, 22, n), 8, 130)).astype(object), "")
    age = np.char.mod("%d", np.clip(rng.normal(55, 18, n), 16, 99).astype(int)).astype(object)
    sex = rng.choice(["F", "M", "U"], n, p=[0.52, 0.46, 0.02]).astype(object)
    meds = rng.choice(MEDS, n).astype(object)
    symptoms = rng.choice(SYMPTOMS, n).astype(object)
    cols = [b12_txt, mma_txt, hcy, mcv, hb, ferritin, folate]
    bad_mask = rng.random((len(cols), n)) < bad / 3
    for arr, mask in zip(cols, bad_mask, strict=True):
        arr[mask] = rng.choice(BAD, mask.sum())
    ids = np.char.add("S", np.char.zfill(np.arange(1, n + 1).astype(str), 9)).astype(object)
    pids = np.char.add("P", np.char.zfill(rng.integers(1, max(2, n // 2), n).astype(str), 8)).astype(object)
    return np.stack([ids, pids, age, sex, b12_txt, np.where(b12_txt == "", "", b12_unit), mma_txt, mma_unit,
                     hcy, mcv, hb, hb_unit, ferritin, folate, folate_unit, egfr, meds, symptoms], axis=1)


def write_wide(path: Path, rows: int, bad: float, seed: int, chunk: int = 200_000) -> None:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:  # type: ignore[operator]
        w = csv.writer(fh)
        w.writerow(WIDE_COLUMNS)
        for start in range(0, rows, chunk):
            block = wide_rows(min(chunk, rows - start), bad, seed + start)
            block[:, 0] = np.char.add("S", np.char.zfill(np.arange(start + 1, start + len(block) + 1).astype(str), 9))
            w.writerows(block.tolist())


TESTS = [("2132-9", "pg/mL", lambda r: f"{np.exp(r.normal(np.log(400), 0.5)):.0f}"),
         ("13964-2", "nmol/L", lambda r: f"{np.exp(r.normal(np.log(250), 0.45)):.0f}"),
         ("787-2", "fL", lambda r: f"{r.normal(91, 7):.1f}"),
         ("718-7", "g/dL", lambda r: f"{r.normal(13.5, 1.6):.1f}"),
         ("2276-4", "ng/mL", lambda r: f"{np.exp(r.normal(np.log(70), 0.9)):.0f}"),
         ("2284-8", "ng/mL", lambda r: f"{np.exp(r.normal(np.log(8), 0.5)):.1f}")]


def write_long(path: Path, patients: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "collected_at", "test", "value", "unit", "ref_low", "ref_high", "age", "sex"])
        for p in range(1, patients + 1):
            pid = f"P{p:07d}"
            age = int(np.clip(rng.normal(58, 17), 18, 98))
            sex = rng.choice(["F", "M"])
            day = int(rng.integers(0, 700))
            for _ in range(int(rng.integers(1, 4))):
                for code, unit, make in TESTS:
                    if rng.random() < 0.7:
                        when = np.datetime64("2024-01-01") + np.timedelta64(day + int(rng.integers(0, 20)), "D")
                        value = make(rng) if rng.random() > 0.01 else rng.choice(["hemolysed", "QNS"])
                        ref = ("", "") if code != "13964-2" else ("0", "378")
                        w.writerow([pid, str(when), code, value, unit, *ref, age, sex])
                if rng.random() < 0.02:
                    w.writerow([pid, "2024-03-01", "99999-9", "1", "mg/L", "", "", age, sex])
                day += int(rng.integers(30, 300))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["wide", "long"])
    p.add_argument("output", type=Path)
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--patients", type=int, default=500)
    p.add_argument("--bad", type=float, default=0.01, help="fraction of rows with a bad cell")
    p.add_argument("--seed", type=int, default=12)
    args = p.parse_args(argv)
    if args.kind == "wide":
        write_wide(args.output, args.rows, args.bad, args.seed)
    else:
        write_long(args.output, args.patients, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
