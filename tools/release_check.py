"""Release check: what a user installs works, from outside the repository.

Run by ``make release-check`` (and so by CI). Standard library only; it needs the ``build``
package in the interpreter that runs it (the dev extra has it). Steps:

1. Build the sdist, then the wheel *from the sdist* (as ``python -m build`` does), so a file
   missing from the sdist fails here too. Check that every file of ``src/b12labs`` and
   ``reference_ranges/`` is in the wheel, the licence is in its metadata, and the sdist holds
   the tests and their fixtures.
2. Install the wheel with ``[all]`` into a fresh venv outside the checkout and, from a folder
   that is not the checkout, run every command the README shows (read from the README itself,
   on copies of the bundled example data), plus ``serve`` (start, ``GET /healthz``, stop), a
   FHIR round trip and an import of every module of the package.
3. Install the wheel with no extras into another fresh venv: each command works or says in
   one line which extra to install; no traceback anywhere.
4. Unpack the sdist (with nothing beside it) and run its test suite against the ``[all]``
   venv (skip with ``--no-sdist-tests``).

Exit status 0 when every check passed; otherwise 1, with each failure listed at the end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
failures: list[str] = []


def log(msg: str) -> None:
    print(f"[release-check] {msg}", flush=True)


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"[release-check] FAIL: {msg}", flush=True)


def run(cmd: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user who activated ``venv``: no PYTHONPATH, nothing of the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_COLOR"] = "1"
    return env


# --------------------------------------------------------------------------------------- build
def build(work: Path) -> tuple[Path, Path]:
    dist = work / "dist"
    log("building the sdist, then the wheel from the sdist")
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], cwd=work, timeout=900)
    (sdist,) = dist.glob("b12labs-*.tar.gz")
    (wheel,) = dist.glob("b12labs-*.whl")
    return sdist, wheel


def source_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")}


def check_contents(sdist: Path, wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"b12labs/{n}" for n in source_files(REPO / "src" / "b12labs")}
    expected |= {f"b12labs/reference_ranges/{n}" for n in source_files(REPO / "reference_ranges")}
    missing = sorted(expected - names)
    if missing:
        fail(f"wheel lacks {len(missing)} file(s) of the source tree: {missing[:10]}")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        fail("wheel has no LICENSE in its metadata")
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    if "License-Expression: Apache-2.0" not in text:
        fail("wheel METADATA has no SPDX License-Expression")
    with tarfile.open(sdist) as tf:
        members = {m.split("/", 1)[1] for m in tf.getnames() if "/" in m}
    for needed in ("tests/conftest.py", "tests/fixtures/external/README.md", "tests/rules/cases",
                   "examples/export.csv", "reference_ranges/analytes.toml", "LICENSE", "Makefile"):
        if needed not in members:
            fail(f"sdist lacks {needed}")
    log(f"wheel: {len(names)} files; sdist: {len(members)} entries")


def make_venv(path: Path, wheel: Path, extras: str) -> Path:
    log(f"fresh venv {path.name}: pip install {wheel.name}{extras}")
    run([sys.executable, "-m", "venv", str(path)], cwd=path.parent)
    py = path / "bin" / "python"
    run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{wheel}{extras}"],
        cwd=path.parent, timeout=1200)
    return path


# ------------------------------------------------------------------------------- entry points
def readme_commands() -> list[str]:
    """Every ``b12labs ...`` line of the README's shell blocks, without its trailing comment."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("b12labs "):
                cmds.append(line)
    if len(cmds) < 6:
        fail(f"the README shows only {len(cmds)} b12labs commands: was it reorganised?")
    return cmds


def stage_inputs(cwd: Path) -> None:
    """The files the README's commands name, made from the bundled example data."""
    shutil.copy(EXAMPLES / "export.csv", cwd / "export.csv")
    shutil.copy(EXAMPLES / "export.csv", cwd / "big.csv")
    shutil.copy(EXAMPLES / "long_export.csv", cwd / "results_long.csv")
    shutil.copy(EXAMPLES / "panels.json", cwd / "panels.json")
    shutil.copy(EXAMPLES / "serial_export.csv", cwd / "serial_export.csv")
    with (EXAMPLES / "export.csv").open("rb") as src, gzip.open(cwd / "big.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)


def no_traceback(label: str, proc: subprocess.CompletedProcess[str]) -> None:
    if "Traceback (most recent call last)" in proc.stdout + proc.stderr:
        fail(f"{label}: printed a traceback:\n{proc.stderr[-2000:]}")


def entry_points_all(venv: Path, cwd: Path) -> None:
    env = clean_env(venv)
    stage_inputs(cwd)
    fixed = [
        "b12labs --help",
        "b12labs --version",
        "b12labs profiles",
        "b12labs rules",
        "b12labs interpret --file panels.json",
        "b12labs interpret --b12 '180 pg/mL' --mcv '108 fL' --json",
        "b12labs score export.csv -o wide.parquet",
        "b12labs score results_long.csv -o long.csv --report long-report.html",
    ]
    for cmd in fixed + readme_commands():
        proc = run(shlex.split(cmd), cwd=cwd, env=env, check=False, timeout=600)
        no_traceback(cmd, proc)
        if proc.returncode != 0:
            fail(f"{cmd}: exit {proc.returncode}: {proc.stderr.strip()[-1500:]}")
            continue
        if "--json" in cmd:
            try:
                json.loads(proc.stdout)
            except ValueError:
                fail(f"{cmd}: stdout is not JSON")
        log(f"ok: {cmd}")
    for out in ("scored.csv", "cohort.html", "episodes.csv", "scored.parquet", "wide.parquet", "long.csv",
                "long-report.html"):
        if not (cwd / out).is_file() or (cwd / out).stat().st_size == 0:
            fail(f"expected output {out} was not written")
    scored = (cwd / "scored.csv").read_text(encoding="utf-8").splitlines()
    source = (EXAMPLES / "export.csv").read_text(encoding="utf-8").splitlines()
    if len(scored) != len(source):
        fail(f"score export.csv: {len(scored)} lines out for {len(source)} in")

    # every module of the installed package imports, from the installed location
    code = (
        "import importlib, pkgutil, b12labs, sys\n"
        "assert 'site-packages' in b12labs.__file__, b12labs.__file__\n"
        "mods = [m.name for m in pkgutil.walk_packages(b12labs.__path__, 'b12labs.') if m.name != 'b12labs.__main__']\n"
        "for m in mods: importlib.import_module(m)\n"
        "print(len(mods))\n"
    )
    proc = run([str(venv / "bin" / "python"), "-c", code], cwd=cwd, env=env, check=False)
    if proc.returncode != 0:
        fail(f"importing every module failed: {proc.stderr[-2000:]}")
    else:
        log(f"ok: {proc.stdout.strip()} modules import")

    # FHIR round trip: FHIR in -> interpret_fhir -> to_fhir -> its Observations back in -> same result
    code = (
        "import json, b12labs\n"
        "from b12labs.fhir import interpret_fhir, to_fhir\n"
        "def obs(i, loinc, value, unit):\n"
        "    return {'resourceType': 'Observation', 'id': f'o{i}', 'status': 'final',\n"
        "            'code': {'coding': [{'system': 'http://loinc.org', 'code': loinc}]},\n"
        "            'subject': {'reference': 'Patient/p1'}, 'effectiveDateTime': '2026-01-05',\n"
        "            'valueQuantity': {'value': value, 'unit': unit, 'system': 'http://unitsofmeasure.org', 'code': unit}}\n"
        "patient = {'resourceType': 'Patient', 'id': 'p1', 'gender': 'female', 'birthDate': '1960-03-01'}\n"
        "inputs = [obs(1, '2132-9', 150, 'pg/mL'), obs(2, '787-2', 104, 'fL')]\n"
        "bundle = {'resourceType': 'Bundle', 'type': 'collection', 'entry': [{'resource': r} for r in [patient, *inputs]]}\n"
        "r = interpret_fhir(bundle)\n"
        "out = json.loads(json.dumps(to_fhir(r, subject='Patient/p1', inputs=inputs)))\n"
        "back = [e['resource'] for e in out['entry'] if e['resource']['resourceType'] == 'Observation']\n"
        "assert len(back) == 2, back\n"
        "again = interpret_fhir([patient, *back])\n"
        "assert again.status == r.status and again.codes == r.codes, (again.codes, r.codes)\n"
        "print(r.status.value, len(out['entry']), 'resources')\n"
    )
    proc = run([str(venv / "bin" / "python"), "-c", code], cwd=cwd, env=env, check=False)
    if proc.returncode != 0:
        fail(f"FHIR round trip failed: {proc.stderr[-2000:]}")
    else:
        log(f"ok: FHIR round trip ({proc.stdout.strip()})")

    serve(venv, cwd, env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(venv: Path, cwd: Path, env: dict[str, str]) -> None:
    port = free_port()
    cmd = [str(venv / "bin" / "b12labs"), "serve", "--port", str(port), "--allow-unauthenticated"]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    body = json.loads(resp.read())
                    break
            except OSError:
                time.sleep(0.3)
        if body is None or body.get("status") != "ok":
            fail(f"serve: GET /healthz gave {body!r} (server exit {proc.poll()})")
        else:
            log("ok: b12labs serve answered GET /healthz")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/cds-services", timeout=5) as resp:
            services = json.loads(resp.read())["services"]
        if not services:
            fail("serve: discovery lists no service")
    except OSError as exc:
        fail(f"serve: {exc}")
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if "Traceback (most recent call last)" in err:
            fail(f"serve: traceback on shutdown:\n{err[-2000:]}")
        log(f"serve stopped (exit {proc.returncode})")


def entry_points_core(venv: Path, cwd: Path) -> None:
    """No extras: every command works or says in one line which extra to install."""
    env = clean_env(venv)
    stage_inputs(cwd)
    works = [
        "b12labs --help",
        "b12labs interpret --b12 '250 pg/mL' --mma '0.6 umol/L' --age 70 --symptom numbness",
        "b12labs interpret --b12 '250 pg/mL' --json",
        "b12labs score export.csv -o scored.csv",
        "b12labs score results_long.csv -o episodes.csv",
        "b12labs score big.csv.gz -o big.scored.csv --chunksize 5",
    ]
    needs_extra = {
        "b12labs score export.csv -o scored.parquet": "parquet",
        "b12labs score export.csv -o s2.csv --report cohort.html": "report",
        "b12labs score export.csv -o s3.csv --engine dask --workers 2": "dask",
        "b12labs serve --port 1 --allow-unauthenticated": "service",
    }
    for cmd in works:
        proc = run(shlex.split(cmd), cwd=cwd, env=env, check=False)
        no_traceback(f"core: {cmd}", proc)
        if proc.returncode != 0:
            fail(f"core: {cmd}: exit {proc.returncode}: {proc.stderr.strip()[-1500:]}")
        else:
            log(f"ok (core): {cmd}")
    for cmd, extra in needs_extra.items():
        proc = run(shlex.split(cmd), cwd=cwd, env=env, check=False)
        no_traceback(f"core: {cmd}", proc)
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        if proc.returncode == 0:
            log(f"ok (core, no extra needed): {cmd}")
        elif proc.returncode in (1, 2) and len(lines) == 1 and f"b12labs[{extra}]" in lines[0]:
            log(f"ok (core, names the extra): {cmd} -> {lines[0]}")
        else:
            fail(f"core: {cmd}: exit {proc.returncode}; expected one line naming b12labs[{extra}], got: "
                 f"{proc.stderr.strip()[-1500:]}")
    # the optional subpackages name their extra when used without it
    for code, extra in (("import b12labs.fhir", "fhir"), ("from b12labs.service import create_app", "service")):
        probe = (f"from b12labs.errors import MissingExtraError\ntry:\n    {code}\n"
                 f"except MissingExtraError as e:\n    assert e.extra == {extra!r}, e.extra\n    print(e)\n"
                 "else:\n    raise SystemExit('imported without its extra')\n")
        proc = run([str(venv / "bin" / "python"), "-c", probe], cwd=cwd, env=env, check=False)
        if proc.returncode != 0:
            fail(f"core: {code}: {proc.stderr.strip()[-800:] or proc.stdout.strip()}")
        else:
            log(f"ok (core): {code} -> {proc.stdout.strip()}")


# ---------------------------------------------------------------------------- sdist test suite
def sdist_tests(sdist: Path, venv: Path, work: Path) -> None:
    unpack = work / "unpacked"
    with tarfile.open(sdist) as tf:
        tf.extractall(unpack, filter="data")
    (root,) = unpack.iterdir()
    log(f"running the sdist's test suite against the installed wheel, in {root} (nothing beside it)")
    env = clean_env(venv)
    env.setdefault("HYPOTHESIS_PROFILE", "ci")
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=root, env=env, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=3600, check=False)
    tail = proc.stdout.strip().splitlines()[-15:]
    print("\n".join(f"    {ln}" for ln in tail), flush=True)
    if proc.returncode != 0:
        fail(f"the sdist's test suite failed (exit {proc.returncode})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sdist-tests", action="store_true", help="skip running the sdist's test suite")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="b12labs-release-"))
    try:
        sdist, wheel = build(work)
        check_contents(sdist, wheel)
        full = make_venv(work / "venv-all", wheel, "[all]")
        (work / "run-all").mkdir()
        entry_points_all(full, work / "run-all")
        core = make_venv(work / "venv-core", wheel, "")
        (work / "run-core").mkdir()
        entry_points_core(core, work / "run-core")
        if not args.no_sdist_tests:
            sdist_tests(sdist, full, work)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        fail(str(exc))
    finally:
        if args.keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    took = time.monotonic() - started
    if failures:
        print(f"\n[release-check] {len(failures)} failure(s) in {took:.0f} s:", flush=True)
        for f in failures:
            print(f"  - {f.splitlines()[0]}")
        return 1
    print(f"\n[release-check] all checks passed in {took:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
