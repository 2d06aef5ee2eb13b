"""The ``b12labs`` command line: interpret one patient, score exports, serve CDS Hooks, docs.

Decision support, never a diagnosis. Patient values are printed to the terminal only when the
user asks for them; nothing is logged.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from ._display import unit_shown
from .errors import B12LabsError, InputFormatError
from .units import ANALYTES

__all__ = ["main"]

_COLOURS = {
    "critical": "\033[1;31m",
    "warning": "\033[33m",
    "info": "\033[36m",
    "deficient": "\033[1;31m",
    "probable": "\033[1;33m",
    "indeterminate": "\033[33m",
    "unlikely": "\033[32m",
    "uninterpretable": "\033[35m",
    "not_assessed": "\033[2m",
    "bold": "\033[1m",
    "dim": "\033[2m",
    "reset": "\033[0m",
}


class _Style:
    def __init__(self, stream: TextIO, colour: bool | None = None) -> None:
        if colour is None:
            colour = (
                stream.isatty()
                and "NO_COLOR" not in os.environ
                and os.environ.get("TERM") != "dumb"
            )
        self.colour = colour

    def __call__(self, text: str, kind: str) -> str:
        if not self.colour:
            return text
        return f"{_COLOURS.get(kind, '')}{text}{_COLOURS['reset']}"


def _shown(value: float) -> str:
    """A number as the terminal view prints it: as given when it has at most four significant
    digits (a lab's own figure), else a conversion to 3 significant figures (RULES §1.7)."""
    from ._display import sig3

    text = f"{value:g}"
    digits = text.split("e")[0].replace("-", "").replace(".", "").lstrip("0")
    return text if len(digits) <= 4 else sig3(value)


def render_text(result: Any, style: _Style, label: str | None = None) -> str:
    """A readable terminal view of one :class:`~b12labs.Interpretation`."""
    lines = []
    if label:
        lines.append(style(label, "bold"))
    status = result.status.value
    lines.append(
        f"Status: {style(status.upper().replace('_', ' '), status)}"
        f"   (profile {result.profile_id} v{result.profile_version}, b12labs {result.library_version})"
    )
    if result.values:
        vals = ", ".join(
            f"{k} {_shown(v)} {unit_shown(ANALYTES[k].canonical_unit)}"
            if not ANALYTES[k].qualitative
            else f"{k} {'positive' if v else 'negative'}"
            for k, v in result.values.items()
        )
        lines.append(style(f"Values used: {vals}", "dim"))
    if not result.findings:
        lines.append("No findings.")
    for f in result.findings:
        sev = f.severity.value
        lines.append("")
        lines.append(f"{style(f'[{sev.upper()}]', sev)} {style(f.code, 'bold')}: {f.title}")
        lines.append(f"  {f.message}")
        for e in f.evidence:
            parts = [f"{e.analyte} {e.reported or ''}".strip()]
            if e.value is not None and e.unit:
                parts.append(f"= {_shown(e.value)} {unit_shown(e.unit)}")
            if e.collected_at:
                parts.append(f"on {e.collected_at[:10]}")
            if e.change is not None:
                # a serial comparison: the change is what met the threshold, not the value
                sign = "+" if e.change > 0 else ""
                pct = f", {sign}{e.change_percent:g} %" if e.change_percent is not None else ""
                parts.append(f"change {sign}{_shown(e.change)} {unit_shown(e.unit or '')}{pct}")
            if e.threshold is not None:
                parts.append(
                    f"vs {_shown(e.threshold)} {unit_shown(e.threshold_unit or '')}"
                    + (" (lab interval)" if e.lab_interval else "")
                )
            if e.note:
                parts.append(f"[{e.note}]")
            lines.append(style("  · " + " ".join(parts), "dim"))
        for a in f.actions:
            extra = f" (LOINC {a.loinc})" if a.loinc else ""
            verb = {"order_test": "Order", "review": "Review", "avoid": "Avoid"}[a.kind]
            lines.append(f"  → {verb}: {a.test}{extra}")
        if f.sources:
            lines.append(style("  Sources: " + "; ".join(f.sources), "dim"))
    if result.unrecognised_medications:
        lines.append("")
        lines.append(
            "Medications not recognised (ignored): " + ", ".join(result.unrecognised_medications)
        )
    if result.ignored:
        lines.append("")
        lines.extend(f"Not used: {i.source}: {i.reason}" for i in result.ignored)
    lines.append("")
    lines.append(style("Comment: ", "bold") + result.comment)
    return "\n".join(lines)


def _add_interpret(sub: Any) -> None:
    p = sub.add_parser(
        "interpret",
        help="interpret one patient's results (or a JSON file of panels)",
        description="Interpret one patient's B12 work-up. Give each result with its unit, e.g. "
        "--b12 '250 pg/mL' --mma '0.6 umol/L'. Decision support, not a diagnosis.",
    )
    for key, spec in ANALYTES.items():
        p.add_argument(
            f"--{key.replace('_', '-')}",
            dest=key,
            metavar="RESULT",
            help=f"{spec.name} (e.g. '{_example(key)}')".replace("%", "%%"),
        )
    p.add_argument("--age", type=float, help="age in years")
    p.add_argument("--sex", help="female/f, male/m, other, unknown")
    p.add_argument("--pregnant", action="store_true", default=None, help="the patient is pregnant")
    p.add_argument("--symptom", action="append", default=[], help="a symptom (repeatable)")
    p.add_argument("--condition", action="append", default=[], help="a condition (repeatable)")
    p.add_argument(
        "--medication", action="append", default=[], help="a medication, free text (repeatable)"
    )
    p.add_argument(
        "--nitrous-oxide", action="store_true", default=None, help="nitrous oxide exposure"
    )
    p.add_argument("--b12-treatment", choices=["none", "oral", "injection"])
    p.add_argument("--days-since-b12-injection", type=float)
    p.add_argument("--b12-treatment-started", help="date B12 replacement began (YYYY-MM-DD)")
    p.add_argument("--collected-at", help="specimen collection date-time (ISO 8601)")
    p.add_argument("--gestational-weeks", type=float, help="weeks of pregnancy")
    p.add_argument(
        "--breastfeeding", action="store_true", default=None, help="the patient is breastfeeding"
    )
    p.add_argument(
        "--profile", default="nice-ng239-2024", help="profile id or path to a local profile TOML"
    )
    p.add_argument(
        "--decimal", default=".", choices=[".", ","], help="decimal separator of the values"
    )
    p.add_argument(
        "--comment-limit",
        type=int,
        help="longest printed comment, in characters (default: the profile's, else 400)",
    )
    p.add_argument(
        "--file",
        type=Path,
        help="a JSON file: a list of {label, panel, context, history} (history: earlier "
        "results, each {collected_at, <analytes>, context})",
    )
    p.add_argument("--json", action="store_true", help="print the interpretation as JSON")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto")


def _read_panels(path: Path) -> list[dict[str, Any]]:
    """The panels of ``interpret --file``: a JSON list of objects, or a one-line error."""
    expected = "a JSON list of {label, panel, context, history} objects"
    if path.is_dir():
        raise InputFormatError(f"--file {path} is a folder; expected {expected}")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFormatError(f"--file {path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"--file {path}: not UTF-8 text at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise InputFormatError(
            f"--file {path}: not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InputFormatError(f"--file {path}: expected {expected}")
    return items


def _example(key: str) -> str:
    return {
        "b12": "250 pg/mL",
        "holotc": "40 pmol/L",
        "mma": "0.45 umol/L",
        "homocysteine": "18 umol/L",
        "mcv": "104 fL",
        "hb": "11.5 g/dL",
        "rdw": "15.5 %",
        "ferritin": "12 ng/mL",
        "tsat": "14 %",
        "iron": "40 ug/dL",
        "tibc": "400 ug/dL",
        "folate": "3.5 ng/mL",
        "rbc_folate": "300 nmol/L",
        "creatinine": "1.1 mg/dL",
        "egfr": "55 mL/min/1.73m2",
        "crp": "12 mg/L",
        "if_antibody": "positive",
        "retic": "120 10*9/L",
    }[key]


def _run_interpret(args: argparse.Namespace) -> int:
    from ._comment import check_comment_limit
    from ._interpret import interpret

    colour = {"auto": None, "always": True, "never": False}[args.color]
    style = _Style(sys.stdout, colour)
    limit = args.comment_limit
    if limit is not None:
        check_comment_limit(limit, where="--comment-limit")  # once, not per panel
    if args.file:
        items = _read_panels(args.file)
        outputs = []
        for i, item in enumerate(items):
            label = item.get("label") or f"panel {i + 1}"
            try:
                result = interpret(
                    item.get("panel", {}),
                    item.get("context"),
                    profile=args.profile,
                    decimal=args.decimal,
                    comment_limit=limit,
                    history=item.get("history"),
                )
            except B12LabsError as exc:
                if args.json:
                    outputs.append({"label": label, "error": str(exc)})
                else:
                    print(style(label, "bold") + f"\n  cannot interpret: {exc}\n")
                continue
            if args.json:
                outputs.append({"label": label, "interpretation": result.model_dump(mode="json")})
            else:
                print(render_text(result, style, label))
                print()
        if args.json:
            print(json.dumps(outputs, indent=2, ensure_ascii=False))
        return 0
    panel = {k: getattr(args, k) for k in ANALYTES if getattr(args, k) is not None}
    context: dict[str, Any] = {}
    for name in (
        "age",
        "sex",
        "pregnant",
        "b12_treatment",
        "days_since_b12_injection",
        "b12_treatment_started",
        "collected_at",
        "gestational_weeks",
        "breastfeeding",
    ):
        if getattr(args, name) is not None:
            context[name] = getattr(args, name)
    if args.nitrous_oxide is not None:
        context["nitrous_oxide_exposure"] = True
    if args.symptom:
        context["symptoms"] = args.symptom
    if args.condition:
        context["conditions"] = args.condition
    if args.medication:
        context["medications"] = args.medication
    result = interpret(
        panel, context, profile=args.profile, decimal=args.decimal, comment_limit=limit
    )
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(render_text(result, style))
    return 0


def _add_simple(sub: Any) -> None:
    sub.add_parser("profiles", help="list the shipped threshold profiles")
    r = sub.add_parser("rules", help="list the rule catalogue")
    r.add_argument("--json", action="store_true")
    d = sub.add_parser("docs", help="regenerate docs/rules and docs/schema (or --check for drift)")
    d.add_argument("--check", action="store_true", help="fail if the generated docs are stale")
    d.add_argument("--docs-dir", type=Path, default=Path("docs"))


def _run_simple(args: argparse.Namespace) -> int:
    if args.command == "profiles":
        from .profiles import list_profiles

        for p in list_profiles():
            ext = f" (extends {p['extends']})" if p["extends"] else ""
            print(f"{p['id']}  v{p['version']}  {p['effective_date']}  {p['title']}{ext}")
        return 0
    if args.command == "rules":
        from . import list_rules

        rules = list_rules()
        if args.json:
            print(json.dumps(rules, indent=2))
        else:
            for r in rules:
                print(f"{r['code']:32} {r['area']:12} {r['severity']:8} {r['title']}")
        return 0
    if args.command == "docs":
        from ._docs import check, write

        if args.check:
            drift = check(args.docs_dir)
            if drift:
                print(
                    "generated docs are stale; run `make docs`:\n  " + "\n  ".join(drift),
                    file=sys.stderr,
                )
                return 1
            print("docs up to date")
            return 0
        written = write(args.docs_dir)
        print(f"wrote {len(written)} files under {args.docs_dir}")
        return 0
    raise AssertionError(args.command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="b12labs",
        description="Flagged, explained, cited interpretation of vitamin B12 work-up results "
        "(clinical decision support, not a diagnosis).",
    )
    parser.add_argument("--version", action="version", version=f"b12labs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_interpret(sub)
    from .batch.cli import add_arguments as add_score

    if True:
        add_score(
            sub.add_parser(
                "score",
                help="score a CSV/Parquet/Excel export (wide or long)",
                description="Score a lab export: every input row comes back, in order, "
                "with a status, findings and a reason when it cannot be scored.",
            )
        )
    serve = sub.add_parser(
        "serve",
        help="run the CDS Hooks service (extra 'service')",
        description="Run the CDS Hooks 2.0 service.",
    )
    try:
        from .service._cli import add_arguments as add_serve
    except ImportError:
        serve.set_defaults(_serve_missing=True)
    else:
        add_serve(serve)
    _add_simple(sub)
    return parser


_TERMINATED: list[bool] = []


def _on_sigterm(signum: int, frame: object) -> None:
    # raised in the main thread so every writer's cleanup (`except BaseException`) runs
    _TERMINATED.append(True)
    raise KeyboardInterrupt


def _stdout_gone() -> int:
    # the reader of a pipe left (`b12labs score x.csv -o - | head`): quietly, as `cat` does
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return _dispatch(args)
    except B12LabsError as exc:
        print(f"b12labs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if _TERMINATED:
            print("b12labs: terminated", file=sys.stderr)
            return 143
        print("b12labs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _stdout_gone()
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"b12labs: error: {exc.strerror or type(exc).__name__}{where}", file=sys.stderr)
        return 1
    except Exception as exc:
        if os.environ.get("B12LABS_DEBUG") == "1":
            raise
        print(
            f"b12labs: internal error ({type(exc).__name__}); please report it. "
            "Set B12LABS_DEBUG=1 for the traceback.",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "interpret":
        return _run_interpret(args)
    if args.command == "score":
        from .batch.cli import run as run_score

        return run_score(args)
    if args.command == "serve":
        if getattr(args, "_serve_missing", False):
            from .errors import MissingExtraError

            raise MissingExtraError("b12labs serve", "service", "fastapi")
        from .service._cli import run as run_serve

        return run_serve(args)
    return _run_simple(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
