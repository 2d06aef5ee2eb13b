"""Cohort report: streaming aggregate summary of scored batches and a self-contained HTML file.

:class:`CohortSummary` is fed the scored DataFrame chunk by chunk (``update``) so a file larger
than memory can be summarised in one pass.  It keeps only aggregates:

* exact counts (rows, per status, per finding code, per maximum severity, per profile, rows
  with an error, non-missing values per canonical analyte column);
* an exact histogram of ``b12_pmol_l`` over fixed bins (default 0–1500 pmol/L in 60 bins, plus
  underflow/overflow counts), so the distribution plot covers every row;
* results over time (long exports; the rules of area ``serial``): episodes per serial
  finding code, episodes with any of them, and the episodes with ``RETEST_TOO_SOON`` by
  which of B12, folate and ferritin they measured (the code does not name the analyte);
* a bounded, reproducible reservoir sample (algorithm R, default 20 000 rows) of
  ``(b12_pmol_l, mma_umol_l, b12labs_status)`` drawn from rows where both B12 and MMA are
  present; it feeds the anonymous MMA-vs-B12 scatter plot only.

No identifier or any other input column is ever read, kept or written.

:func:`render_html` writes one HTML file with inline PNG plots (matplotlib Agg, through
``matplotlib.figure.Figure`` directly, never pyplot).  matplotlib is imported lazily and is
only needed for rendering (extra ``b12labs[report]``); :class:`CohortSummary` needs only
numpy and pandas.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import InputFormatError, MissingExtraError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MISSING_STATUS",
    "SERIAL_CODES",
    "SEVERITIES",
    "STATUSES",
    "CohortSummary",
    "render_html",
    "render_plot_pngs",
]

#: Status values of the batch scorer, in display order (most to least concerning).
STATUSES: tuple[str, ...] = (
    "deficient",
    "probable",
    "indeterminate",
    "unlikely",
    "uninterpretable",
    "not_assessed",
)
#: Maximum-severity values, most severe first; rows without a finding are counted as "none".
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info", "none")
#: Key under which rows with an empty/missing ``b12labs_status`` are counted.
MISSING_STATUS = "(missing)"

STATUS_COL = "b12labs_status"
CODES_COL = "b12labs_codes"
SEVERITY_COL = "b12labs_max_severity"
ERROR_COL = "b12labs_error"
PROFILE_COL = "b12labs_profile"
B12_COL = "b12_pmol_l"
MMA_COL = "mma_umol_l"
VALUE_COLUMNS: tuple[str, ...] = (
    "b12_pmol_l",
    "mma_umol_l",
    "homocysteine_umol_l",
    "mcv_fl",
    "hb_g_l",
    "ferritin_ug_l",
    "folate_nmol_l",
)

#: The scorer's columns :meth:`CohortSummary.update` reads.
SUMMARY_COLUMNS: tuple[str, ...] = (
    STATUS_COL,
    SEVERITY_COL,
    ERROR_COL,
    PROFILE_COL,
    CODES_COL,
    *VALUE_COLUMNS,
)

#: The results-over-time finding codes (the rules of area ``serial``) the report counts, in
#: display order, with the report's neutral description of what each counts.
SERIAL_CODES: dict[str, str] = {
    "RETEST_TOO_SOON": "repeat within the minimum retest interval",
    "B12_ON_REPLACEMENT": "B12 or holoTC measured on replacement after a deficient/probable result",
    "HAEMATOLOGICAL_RESPONSE": "Hb or MCV change consistent with response to treatment",
    "NO_RESPONSE_TO_TREATMENT": "no haematological or MMA response 8 weeks or more after treatment",
    "REVIEW_DUE": "treatment started recently: review due",
    "NEURO_RECOVERY_SLOWER": "neurological symptom persists after a haematological response",
    "B12_SIGNIFICANT_FALL": "B12 fall beyond the reference change value",
    "B12_SIGNIFICANT_RISE": "B12 rise beyond the reference change value, no treatment recorded",
    "PREVIOUS_DEFICIENCY": "B12 now in the unlikely band after an earlier deficient/probable result",
    "RESULT_CONFLICT": "two different results at the same time (neither used)",
}
#: Analytes with a minimum retest interval and the canonical column that shows one was measured.
RETEST_ANALYTES: dict[str, str] = {
    "B12": "b12_pmol_l",
    "folate": "folate_nmol_l",
    "ferritin": "ferritin_ug_l",
}
_RETEST = "RETEST_TOO_SOON"

_FOOTER = "Decision support, not a diagnosis."

# Okabe–Ito colour-blind-safe palette.
_STATUS_COLOURS: dict[str, str] = {
    "deficient": "#D55E00",
    "probable": "#E69F00",
    "indeterminate": "#56B4E9",
    "unlikely": "#009E73",
    "uninterpretable": "#999999",
    "not_assessed": "#CC79A7",
}
_OTHER_COLOUR = "#444444"
_BAND_COLOURS = ("#0072B2", "#D55E00", "#000000", "#009E73", "#CC79A7", "#E69F00")


# --------------------------------------------------------------------------- helpers


def _text_column(chunk: pd.DataFrame, name: str) -> pd.Series:
    """Column as stripped strings with missing values as ``""`` (absent column: all "")."""
    if name not in chunk.columns:
        return pd.Series([""] * len(chunk), index=chunk.index, dtype=object)
    col = chunk[name]
    if col.dtype == object:
        values = col.to_numpy()
        if all(isinstance(v, str) for v in pd.unique(values)):
            # the scorer's own output: already clean strings, no conversion needed
            return pd.Series(values, index=chunk.index, dtype=object)
    col = col.astype(object)
    return col.where(col.notna(), "").astype(str).str.strip()


def _float_column(chunk: pd.DataFrame, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Column as float64 (non-numeric and missing → NaN; absent column: all NaN)."""
    if name not in chunk.columns:
        return np.full(len(chunk), np.nan, dtype=np.float64)
    values = pd.to_numeric(chunk[name], errors="coerce")
    return np.asarray(values, dtype=np.float64)


def _add_counts(target: dict[str, int], counts: pd.Series) -> None:
    for key, n in counts.items():
        target[str(key)] = target.get(str(key), 0) + int(n)


def _ordered(counts: Mapping[str, int], order: Iterable[str]) -> dict[str, int]:
    """Known keys first in the given order (zeros included), then other keys alphabetically."""
    known = list(order)
    out = {k: int(counts.get(k, 0)) for k in known}
    for k in sorted(set(counts) - set(known)):
        out[k] = int(counts[k])
    return out


def _pct(n: int, total: int) -> float | None:
    return round(100.0 * n / total, 2) if total else None


# --------------------------------------------------------------------------- summary


@dataclass
class CohortSummary:
    """Aggregate, streaming summary of scored rows (see the module docstring).

    ``hist_min``/``hist_max``/``hist_bins`` fix the B12 histogram bins (pmol/L, half-open
    ``[lo, hi)`` bins; values ``>= hist_max`` count as overflow, ``< hist_min`` as underflow).
    ``long_format``: the rows are episodes of a long export, so the report has its "Results
    over time" section even when no serial finding fired (it has one whenever one did).
    ``sample_size`` bounds the reservoir; ``seed`` makes it reproducible.  For a given seed the
    reservoir does not depend on how the rows were split into chunks.
    """

    sample_size: int = 20_000
    seed: int = 0
    hist_min: float = 0.0
    hist_max: float = 1500.0
    hist_bins: int = 60
    long_format: bool = False

    rows: int = field(default=0, init=False)
    error_rows: int = field(default=0, init=False)
    status_counts: dict[str, int] = field(default_factory=dict, init=False)
    code_counts: dict[str, int] = field(default_factory=dict, init=False)
    severity_counts: dict[str, int] = field(default_factory=dict, init=False)
    profile_counts: dict[str, int] = field(default_factory=dict, init=False)
    present_counts: dict[str, int] = field(default_factory=dict, init=False)
    hist_counts: list[int] = field(default_factory=list, init=False)
    hist_underflow: int = field(default=0, init=False)
    hist_overflow: int = field(default=0, init=False)
    #: rows with both B12 and MMA present (the population the reservoir samples from)
    paired_rows: int = field(default=0, init=False)
    #: rows with at least one :data:`SERIAL_CODES` finding
    serial_rows: int = field(default=0, init=False)
    #: rows with ``RETEST_TOO_SOON`` and a value of each :data:`RETEST_ANALYTES` analyte
    retest_measured: dict[str, int] = field(default_factory=dict, init=False)

    _sample_b12: np.ndarray[Any, np.dtype[np.float64]] = field(init=False, repr=False)
    _sample_mma: np.ndarray[Any, np.dtype[np.float64]] = field(init=False, repr=False)
    _sample_status: np.ndarray[Any, np.dtype[np.object_]] = field(init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.sample_size < 0:
            raise InputFormatError("sample_size must be >= 0", code="option-invalid")
        if self.hist_bins < 1:
            raise InputFormatError("hist_bins must be >= 1", code="option-invalid")
        if not (math.isfinite(self.hist_min) and math.isfinite(self.hist_max)):
            raise InputFormatError("hist_min and hist_max must be finite", code="option-invalid")
        if self.hist_max <= self.hist_min:
            raise InputFormatError("hist_max must be greater than hist_min", code="option-invalid")
        self.hist_counts = [0] * self.hist_bins
        self.status_counts = dict.fromkeys(STATUSES, 0)
        self.severity_counts = dict.fromkeys(SEVERITIES, 0)
        self.present_counts = dict.fromkeys(VALUE_COLUMNS, 0)
        self.retest_measured = dict.fromkeys(RETEST_ANALYTES, 0)
        self._sample_b12 = np.empty(0, dtype=np.float64)
        self._sample_mma = np.empty(0, dtype=np.float64)
        self._sample_status = np.empty(0, dtype=object)
        self._rng = np.random.default_rng(self.seed)

    # ------------------------------------------------------------------ accumulation

    def update(self, chunk: pd.DataFrame) -> None:
        """Add one chunk of scored rows.  Absent optional columns count as missing values."""
        n = len(chunk)
        if n == 0:
            return
        if STATUS_COL not in chunk.columns:
            raise InputFormatError(f"chunk has no {STATUS_COL!r} column; is it scorer output?")
        self.rows += n

        status = _text_column(chunk, STATUS_COL)
        status = status.where(status != "", MISSING_STATUS)
        _add_counts(self.status_counts, status.value_counts(sort=False))

        severity = _text_column(chunk, SEVERITY_COL).str.lower()
        severity = severity.where(severity != "", "none")
        _add_counts(self.severity_counts, severity.value_counts(sort=False))

        self.error_rows += int((_text_column(chunk, ERROR_COL) != "").sum())

        if PROFILE_COL in chunk.columns:
            profile = _text_column(chunk, PROFILE_COL)
            profile = profile.where(profile != "", "(none)")
            _add_counts(self.profile_counts, profile.value_counts(sort=False))

        all_codes = _text_column(chunk, CODES_COL)
        codes = all_codes[all_codes != ""]
        if len(codes):
            # split each distinct code string once; a code repeated within a row counts once
            retest_strings: list[str] = []
            for joined, rows in codes.value_counts(sort=False).items():
                found = {c.strip() for c in str(joined).split(";")} - {""}
                for code in found:
                    self.code_counts[code] = self.code_counts.get(code, 0) + int(rows)
                if not found.isdisjoint(SERIAL_CODES):
                    self.serial_rows += int(rows)
                if _RETEST in found:
                    retest_strings.append(str(joined))
            if retest_strings:
                retest = all_codes.isin(retest_strings).to_numpy()  # by position
                for analyte, col in RETEST_ANALYTES.items():
                    measured = np.isfinite(_float_column(chunk, col)[retest])
                    self.retest_measured[analyte] += int(measured.sum())

        for col in VALUE_COLUMNS:
            self.present_counts[col] += int(np.isfinite(_float_column(chunk, col)).sum())

        b12 = _float_column(chunk, B12_COL)
        self._update_histogram(b12)

        mma = _float_column(chunk, MMA_COL)
        paired = np.isfinite(b12) & np.isfinite(mma)
        if paired.any():
            self._update_reservoir(b12[paired], mma[paired], status.to_numpy(dtype=object)[paired])

    def _update_histogram(self, b12: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        values = b12[np.isfinite(b12)]
        if values.size == 0:
            return
        under = values < self.hist_min
        over = values >= self.hist_max
        self.hist_underflow += int(under.sum())
        self.hist_overflow += int(over.sum())
        inside = values[~(under | over)]
        if inside.size:
            width = (self.hist_max - self.hist_min) / self.hist_bins
            idx = np.floor((inside - self.hist_min) / width).astype(np.int64)
            idx = np.clip(idx, 0, self.hist_bins - 1)
            counts = np.bincount(idx, minlength=self.hist_bins)
            self.hist_counts = [a + int(b) for a, b in zip(self.hist_counts, counts, strict=True)]

    def _update_reservoir(
        self,
        b12: np.ndarray[Any, np.dtype[np.float64]],
        mma: np.ndarray[Any, np.dtype[np.float64]],
        status: np.ndarray[Any, np.dtype[np.object_]],
    ) -> None:
        """Vectorised algorithm R: identical to feeding the rows one at a time."""
        k = self.sample_size
        seen = self.paired_rows
        n = b12.size
        self.paired_rows += n
        fill = max(0, min(n, k - seen))
        if fill:
            self._sample_b12 = np.concatenate([self._sample_b12, b12[:fill]])
            self._sample_mma = np.concatenate([self._sample_mma, mma[:fill]])
            self._sample_status = np.concatenate([self._sample_status, status[:fill]])
        rest = n - fill
        if rest == 0 or k == 0:
            return
        # row number t (0-based, over all paired rows) replaces slot j ~ U{0..t} if j < k
        t = seen + fill + np.arange(rest, dtype=np.int64)
        j = np.floor(self._rng.random(rest) * (t + 1)).astype(np.int64)
        chosen = np.nonzero(j < k)[0]
        if chosen.size == 0:
            return
        slots = j[chosen]
        # several rows may hit one slot: the last one wins, as in the sequential algorithm
        _, first_rev = np.unique(slots[::-1], return_index=True)
        last = chosen.size - 1 - first_rev
        rows = fill + chosen[last]
        self._sample_b12[slots[last]] = b12[rows]
        self._sample_mma[slots[last]] = mma[rows]
        self._sample_status[slots[last]] = status[rows]

    def merge(self, other: CohortSummary) -> None:
        """Fold in a summary built independently (e.g. by another worker).

        Counts and histogram are combined exactly; the reservoirs are combined into a uniform
        sample of the union (hypergeometric split).  Histogram bins must match.
        """
        if (other.hist_min, other.hist_max, other.hist_bins) != (
            self.hist_min,
            self.hist_max,
            self.hist_bins,
        ):
            raise InputFormatError(
                "cannot merge summaries with different histogram bins", code="option-invalid"
            )
        if other.sample_size != self.sample_size:
            raise InputFormatError(
                "cannot merge summaries with different sample sizes", code="option-invalid"
            )
        self.rows += other.rows
        self.error_rows += other.error_rows
        self.long_format = self.long_format or other.long_format
        self.serial_rows += other.serial_rows
        for mine, theirs in (
            (self.retest_measured, other.retest_measured),
            (self.status_counts, other.status_counts),
            (self.code_counts, other.code_counts),
            (self.severity_counts, other.severity_counts),
            (self.profile_counts, other.profile_counts),
            (self.present_counts, other.present_counts),
        ):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        self.hist_counts = [a + b for a, b in zip(self.hist_counts, other.hist_counts, strict=True)]
        self.hist_underflow += other.hist_underflow
        self.hist_overflow += other.hist_overflow

        n1, n2 = self.paired_rows, other.paired_rows
        total = n1 + n2
        k = min(self.sample_size, total)
        if len(self._sample_b12) + len(other._sample_b12) <= k:
            take_a = np.arange(len(self._sample_b12))
            take_b = np.arange(len(other._sample_b12))
        else:
            if total < 10**9:
                from_a = int(self._rng.hypergeometric(n1, n2, k)) if n1 and n2 else (k if n1 else 0)
            else:  # numpy's hypergeometric is limited to < 1e9; binomial is very close here
                from_a = int(self._rng.binomial(k, n1 / total))
            from_a = min(from_a, len(self._sample_b12))
            from_b = min(k - from_a, len(other._sample_b12))
            from_a = k - from_b
            take_a = self._rng.choice(len(self._sample_b12), size=from_a, replace=False)
            take_b = self._rng.choice(len(other._sample_b12), size=from_b, replace=False)
        self._sample_b12 = np.concatenate([self._sample_b12[take_a], other._sample_b12[take_b]])
        self._sample_mma = np.concatenate([self._sample_mma[take_a], other._sample_mma[take_b]])
        self._sample_status = np.concatenate(
            [self._sample_status[take_a], other._sample_status[take_b]]
        )
        self.paired_rows = total

    # ------------------------------------------------------------------ read-out

    @property
    def hist_edges(self) -> list[float]:
        """The ``hist_bins + 1`` bin edges of the B12 histogram (pmol/L)."""
        return [float(x) for x in np.linspace(self.hist_min, self.hist_max, self.hist_bins + 1)]

    @property
    def b12_present(self) -> int:
        """Rows with a B12 value (every one of them is in the histogram or its flow counts)."""
        return self.present_counts.get(B12_COL, 0)

    def sample(self) -> pd.DataFrame:
        """The reservoir sample as a DataFrame (``b12_pmol_l``, ``mma_umol_l``, ``b12labs_status``)."""
        return pd.DataFrame(
            {
                B12_COL: self._sample_b12.copy(),
                MMA_COL: self._sample_mma.copy(),
                STATUS_COL: self._sample_status.astype(str),
            }
        )

    def top_codes(self, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` most frequent finding codes as ``(code, rows)``, ties by code name."""
        ranked = sorted(self.code_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return ranked[: max(n, 0)]

    @property
    def has_results_over_time(self) -> bool:
        """Whether the report shows "Results over time": a long export, or a serial finding."""
        return self.long_format or self.serial_rows > 0

    def results_over_time(self) -> dict[str, Any]:
        """The counts of the report's "Results over time" section (episodes are rows).

        ``codes``: episodes per :data:`SERIAL_CODES` code (zeros included, display order);
        ``episodes_with_any``: episodes with at least one of them; ``retest_by_analyte``: per
        analyte, the episodes that measured it (``measured``) and, of those, the ones with
        ``RETEST_TOO_SOON`` (``with_retest``, ``percent``). The code does not say which analyte
        was repeated, so an episode with it counts under every analyte it measured.
        """
        retest = {}
        for analyte, col in RETEST_ANALYTES.items():
            measured = self.present_counts.get(col, 0)
            n = self.retest_measured.get(analyte, 0)
            retest[analyte] = {"measured": measured, "with_retest": n, "percent": _pct(n, measured)}
        return {
            "episodes": self.rows,
            "long_format": self.long_format,
            "episodes_with_any": self.serial_rows,
            "codes": {code: self.code_counts.get(code, 0) for code in SERIAL_CODES},
            "retest_by_analyte": retest,
        }

    def ordered_status_counts(self) -> dict[str, int]:
        return _ordered(self.status_counts, STATUSES)

    def ordered_severity_counts(self) -> dict[str, int]:
        return _ordered(self.severity_counts, SEVERITIES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly aggregate summary (no sample values)."""
        statuses = self.ordered_status_counts()
        return {
            "rows": self.rows,
            "error_rows": self.error_rows,
            "status_counts": statuses,
            "status_percent": {k: _pct(v, self.rows) for k, v in statuses.items()},
            "severity_counts": self.ordered_severity_counts(),
            "code_counts": dict(self.top_codes(len(self.code_counts))),
            "profile_counts": dict(sorted(self.profile_counts.items())),
            "present_counts": _ordered(self.present_counts, VALUE_COLUMNS),
            "b12_histogram": {
                "unit": "pmol/L",
                "edges": self.hist_edges,
                "counts": list(self.hist_counts),
                "underflow": self.hist_underflow,
                "overflow": self.hist_overflow,
                "missing": self.rows - self.b12_present,
            },
            "results_over_time": self.results_over_time(),
            "sample": {
                "capacity": self.sample_size,
                "size": len(self._sample_b12),
                "population": self.paired_rows,
                "seed": self.seed,
            },
        }


# --------------------------------------------------------------------------- plots


def _import_matplotlib() -> tuple[type[Figure], Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtraError("the cohort report", "report", "matplotlib") from exc
    return Figure, FigureCanvasAgg


def require_matplotlib() -> None:
    """Raise :class:`~b12labs.errors.MissingExtraError` now if the report cannot be drawn.

    The CLI calls this before scoring, so a run asked for a report does not score a whole
    export and only then fail.
    """
    _import_matplotlib()


def _mpl_text(text: str) -> str:
    """Keep data-derived text literal in matplotlib (no mathtext)."""
    return text.replace("$", r"\$")


def _parse_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, str):
        m = re.fullmatch(
            r"\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(?:[µu]mol/?l)?\s*", value, re.I
        )
        if m:
            return float(m.group(1))
    return None


def _split_bands(
    bands: Mapping[str, float] | None, extra: Mapping[str, str] | None
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """B12 band boundaries (pmol/L) and MMA limits (µmol/L: any key mentioning "mma")."""
    b12_lines: list[tuple[str, float]] = []
    mma_lines: list[tuple[str, float]] = []
    for label, value in (bands or {}).items():
        v = _parse_float(value)
        if v is None:
            continue
        (mma_lines if "mma" in label.lower() else b12_lines).append((label, v))
    for label, text in (extra or {}).items():
        if "mma" in label.lower():
            v = _parse_float(text)
            if v is not None and (label, v) not in mma_lines:
                mma_lines.append((label, v))
    return sorted(b12_lines, key=lambda lv: lv[1]), mma_lines


def _new_figure(figure_cls: type[Figure], canvas_cls: Any, w: float, h: float) -> Figure:
    fig = figure_cls(figsize=(w, h), dpi=100, layout="constrained")
    canvas_cls(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _plot_status(fig: Figure, summary: CohortSummary) -> None:
    ax: Axes = fig.add_subplot()
    counts = summary.ordered_status_counts()
    labels = list(counts)[::-1]
    values = [counts[k] for k in labels]
    colours = [_STATUS_COLOURS.get(k, _OTHER_COLOUR) for k in labels]
    bars = ax.barh([_mpl_text(k) for k in labels], values, color=colours)
    ax.bar_label(
        bars,
        labels=[f"{v:,} ({100.0 * v / summary.rows:.1f}%)" for v in values],
        padding=3,
        fontsize=9,
    )
    ax.set_xlim(0, max(max(values), 1) * 1.3)
    ax.set_xlabel("rows")
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.set_title(f"Status (n = {summary.rows:,})")
    ax.spines[["top", "right"]].set_visible(False)


def _plot_histogram(
    fig: Figure, summary: CohortSummary, b12_lines: list[tuple[str, float]]
) -> None:
    ax: Axes = fig.add_subplot()
    edges = summary.hist_edges
    ax.stairs(summary.hist_counts, edges, fill=True, color="#7fa7c9", edgecolor="#30577a")
    ax.set_xlim(edges[0], edges[-1])
    top = max(max(summary.hist_counts), 1)
    ax.set_ylim(0, top * 1.15)
    xform = ax.get_xaxis_transform()
    for i, (label, v) in enumerate(b12_lines):
        if not edges[0] <= v <= edges[-1]:
            continue
        colour = _BAND_COLOURS[i % len(_BAND_COLOURS)]
        ax.axvline(v, color=colour, linestyle="--", linewidth=1.3)
        ax.text(
            v,
            0.98,
            f" {_mpl_text(label)} ({v:g}) ",
            transform=xform,
            rotation=90,
            ha="right",
            va="top",
            fontsize=8,
            color=colour,
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1},
        )
    notes = []
    if summary.hist_overflow:
        notes.append(f"{summary.hist_overflow:,} ≥ {edges[-1]:g} pmol/L not shown")
    if summary.hist_underflow:
        notes.append(f"{summary.hist_underflow:,} < {edges[0]:g} pmol/L not shown")
    if notes:
        ax.text(
            0.99,
            0.80,
            "\n".join(notes),
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color="#333333",
        )
    ax.set_xlabel("B12 (pmol/L)")
    ax.set_ylabel("rows")
    ax.yaxis.set_major_formatter("{x:,.0f}")
    ax.set_title(f"B12 distribution (all {summary.b12_present:,} rows with a B12 value)")
    ax.spines[["top", "right"]].set_visible(False)


def _plot_scatter(
    fig: Figure,
    summary: CohortSummary,
    b12_lines: list[tuple[str, float]],
    mma_lines: list[tuple[str, float]],
) -> None:
    ax: Axes = fig.add_subplot()
    x, y, status = summary._sample_b12, summary._sample_mma, summary._sample_status
    present = set(status.tolist())
    order = [s for s in STATUSES if s in present] + sorted(present - set(STATUSES))
    # least concerning first so rarer, more concerning points are drawn on top
    for name in reversed(order):
        mask = status == name
        ax.scatter(
            x[mask],
            y[mask],
            s=7,
            alpha=0.55,
            linewidths=0,
            color=_STATUS_COLOURS.get(name, _OTHER_COLOUR),
            label=f"{_mpl_text(name)} ({int(mask.sum()):,})",
        )
    if y.size and float(y.min()) > 0 and float(y.max()) / float(y.min()) > 30:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter("{x:g}")
    # keep the x axis on the histogram's range so a few extreme values do not squash the plot
    x_lo = min(float(x.min()), summary.hist_min)
    beyond = int((x > summary.hist_max).sum())
    if beyond > 0.01 * x.size:  # not just a few outliers: show the whole range
        beyond = 0
    x_hi = float(x.max()) if beyond == 0 else summary.hist_max
    if x_hi > x_lo:
        pad = 0.02 * (x_hi - x_lo)
        ax.set_xlim(x_lo - pad, x_hi + pad)
    if beyond:
        ax.text(
            0.99,
            0.02,
            f"{beyond:,} sampled points > {summary.hist_max:g} pmol/L not shown",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="#333333",
        )
    for i, (_label, v) in enumerate(b12_lines):
        ax.axvline(v, color=_BAND_COLOURS[i % len(_BAND_COLOURS)], linestyle=":", linewidth=1)
    yform = ax.get_yaxis_transform()
    for label, v in mma_lines:
        if v <= 0 and ax.get_yscale() == "log":
            continue
        ax.axhline(v, color="#000000", linestyle="--", linewidth=1.2)
        ax.text(
            0.99,
            v,
            f"{_mpl_text(label)} ({v:g} µmol/L)",
            transform=yform,
            ha="right",
            va="bottom",
            fontsize=8,
        )
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        labels[::-1],
        title="status (points)",
        fontsize=8,
        title_fontsize=8,
        markerscale=2,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    ax.set_xlabel("B12 (pmol/L)")
    ax.set_ylabel("MMA (µmol/L)")
    sampled = len(x)
    what = (
        f"random sample of {sampled:,} of {summary.paired_rows:,}"
        if sampled < summary.paired_rows
        else f"all {sampled:,}"
    )
    ax.set_title(f"MMA against B12 ({what} rows with both)")
    ax.spines[["top", "right"]].set_visible(False)


def _plot_codes(fig: Figure, summary: CohortSummary, top: list[tuple[str, int]]) -> None:
    ax: Axes = fig.add_subplot()
    labels = [_mpl_text(code) for code, _ in top][::-1]
    values = [n for _, n in top][::-1]
    bars = ax.barh(labels, values, color="#0072B2")
    ax.bar_label(
        bars,
        labels=[f"{v:,} ({100.0 * v / summary.rows:.1f}%)" for v in values],
        padding=3,
        fontsize=8,
    )
    ax.set_xlim(0, max(values) * 1.3)
    ax.set_xlabel("rows with the finding")
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.set_title(f"Most frequent findings (top {len(top)} of {len(summary.code_counts)})")
    ax.tick_params(axis="y", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)


#: The groups of the "Results over time" plot and tables: (title, codes, bar colour).
_SERIAL_GROUPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Retesting", ("RETEST_TOO_SOON", "B12_ON_REPLACEMENT"), "#0072B2"),
    (
        "Follow-up after treatment",
        (
            "HAEMATOLOGICAL_RESPONSE",
            "NO_RESPONSE_TO_TREATMENT",
            "REVIEW_DUE",
            "NEURO_RECOVERY_SLOWER",
        ),
        "#009E73",
    ),
    (
        "Change between results",
        ("B12_SIGNIFICANT_FALL", "B12_SIGNIFICANT_RISE", "PREVIOUS_DEFICIENCY", "RESULT_CONFLICT"),
        "#E69F00",
    ),
)


def _plot_serial(fig: Figure, summary: CohortSummary) -> None:
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    ax: Axes = fig.add_subplot()
    counts = summary.results_over_time()["codes"]
    labels: list[str] = []
    values: list[int] = []
    colours: list[str] = []
    for _title, codes, colour in _SERIAL_GROUPS:
        for code in codes:
            labels.append(_mpl_text(code))
            values.append(int(counts[code]))
            colours.append(colour)
    labels, values, colours = labels[::-1], values[::-1], colours[::-1]
    bars = ax.barh(labels, values, color=colours)
    ax.bar_label(
        bars,
        labels=[f"{v:,} ({100.0 * v / summary.rows:.1f}%)" for v in values],
        padding=3,
        fontsize=8,
    )
    ax.set_xlim(0, max(max(values), 1) * 1.3)
    ax.set_xlabel("episodes with the finding")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.set_title(f"Results over time (n = {summary.rows:,} episodes)")
    ax.tick_params(axis="y", labelsize=8)
    handles = [Rectangle((0, 0), 1, 1, color=colour) for _title, _codes, colour in _SERIAL_GROUPS]
    ax.legend(
        handles,
        [title for title, _codes, _colour in _SERIAL_GROUPS],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    ax.spines[["top", "right"]].set_visible(False)


_PLOT_TITLES: dict[str, str] = {
    "status": "Status counts",
    "b12_histogram": "B12 distribution",
    "mma_vs_b12": "MMA against B12",
    "findings": "Most frequent findings",
    "results_over_time": "Results over time",
}


def _plots(
    summary: CohortSummary,
    bands: Mapping[str, float] | None,
    extra: Mapping[str, str] | None,
    top_n: int,
) -> dict[str, bytes | str]:
    """PNG bytes per plot, or a text note (str) where there is nothing to draw."""
    figure_cls, canvas_cls = _import_matplotlib()
    b12_lines, mma_lines = _split_bands(bands, extra)
    out: dict[str, bytes | str] = {}

    if summary.rows == 0:
        out["status"] = "No rows in this cohort."
    else:
        fig = _new_figure(figure_cls, canvas_cls, 7.5, 3.6)
        _plot_status(fig, summary)
        out["status"] = _png(fig)

    if summary.b12_present == 0:
        out["b12_histogram"] = "No B12 values in this cohort."
    else:
        fig = _new_figure(figure_cls, canvas_cls, 8.0, 4.2)
        _plot_histogram(fig, summary, b12_lines)
        out["b12_histogram"] = _png(fig)

    if summary.paired_rows == 0 or len(summary._sample_b12) == 0:
        out["mma_vs_b12"] = "No rows with both a B12 and an MMA value."
    else:
        fig = _new_figure(figure_cls, canvas_cls, 8.0, 5.0)
        _plot_scatter(fig, summary, b12_lines, mma_lines)
        out["mma_vs_b12"] = _png(fig)

    top = summary.top_codes(top_n)
    if not top:
        out["findings"] = "No findings reported."
    else:
        fig = _new_figure(figure_cls, canvas_cls, 8.0, 1.2 + 0.32 * len(top))
        _plot_codes(fig, summary, top)
        out["findings"] = _png(fig)

    if summary.has_results_over_time:
        if summary.serial_rows == 0:
            out["results_over_time"] = "No results-over-time findings in these episodes."
        else:
            fig = _new_figure(figure_cls, canvas_cls, 8.0, 1.2 + 0.32 * len(SERIAL_CODES))
            _plot_serial(fig, summary)
            out["results_over_time"] = _png(fig)
    return out


def render_plot_pngs(
    summary: CohortSummary,
    *,
    bands: dict[str, float] | None = None,
    extra: dict[str, str] | None = None,
    top_n: int = 15,
) -> dict[str, bytes]:
    """The report's plots as PNG bytes keyed ``status``, ``b12_histogram``, ``mma_vs_b12``,
    ``findings`` and, for a long export or any serial finding, ``results_over_time``; plots
    with nothing to draw are left out."""
    return {k: v for k, v in _plots(summary, bands, extra, top_n).items() if isinstance(v, bytes)}


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2em auto;
max-width:60em;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em}
h3{font-size:1em;margin-top:1.2em}
.meta{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .7em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
th.group{background:#f0f0f0}
img{max-width:100%;height:auto}
.note{color:#666;font-style:italic;border:1px dashed #bbb;padding:1em}
footer{margin-top:2.5em;border-top:1px solid #ccc;padding-top:.6em;color:#555;font-size:.9em}
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt_pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "—"


def _summary_table(summary: CohortSummary, profile_id: str, extra: Mapping[str, str] | None) -> str:
    total = summary.rows
    rows: list[str] = []

    def group(title: str) -> None:
        rows.append(f'<tr><th class="group" colspan="3">{_esc(title)}</th></tr>')

    def line(label: str, n: int | str, pct: str = "") -> None:
        shown = f"{n:,}" if isinstance(n, int) else n
        rows.append(
            f'<tr><td>{_esc(label)}</td><td class="n">{_esc(shown)}</td>'
            f'<td class="n">{_esc(pct)}</td></tr>'
        )

    group("Cohort")
    line("rows", total)
    line("rows with errors", summary.error_rows, _fmt_pct(summary.error_rows, total))
    if profile_id:
        line("profile", profile_id)
    group("Status")
    for name, n in summary.ordered_status_counts().items():
        line(name, n, _fmt_pct(n, total))
    group("Maximum severity")
    for name, n in summary.ordered_severity_counts().items():
        line(name, n, _fmt_pct(n, total))
    if summary.profile_counts:
        group("Rows by profile")
        for name, n in sorted(summary.profile_counts.items()):
            line(name, n, _fmt_pct(n, total))
    group("Values present")
    for name, n in _ordered(summary.present_counts, VALUE_COLUMNS).items():
        line(name, n, _fmt_pct(n, total))
    group("B12 histogram")
    line(f"below {summary.hist_min:g} pmol/L (not plotted)", summary.hist_underflow)
    line(f"at or above {summary.hist_max:g} pmol/L (not plotted)", summary.hist_overflow)
    if extra:
        group("Run")
        for key, value in extra.items():
            line(key, str(value))
    return (
        "<table><thead><tr><th></th><th>rows</th><th>%</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _fmt_value(value: object) -> str:
    v = _parse_float(value)
    return f"{v:g}" if v is not None else str(value)


def _bands_table(bands: Mapping[str, float] | None) -> str:
    if not bands:
        return ""
    body = "".join(
        f'<tr><td>{_esc(label)}</td><td class="n">{_esc(_fmt_value(value))}</td>'
        f"<td>{'µmol/L (MMA)' if 'mma' in label.lower() else 'pmol/L (B12)'}</td></tr>"
        for label, value in bands.items()
    )
    return (
        "<section><h2>Profile bands</h2><table><thead><tr><th>boundary</th><th>value</th>"
        f"<th>unit</th></tr></thead><tbody>{body}</tbody></table></section>"
    )


_SERIAL_INTRO = (
    "Episodes (rows of the scored output, one per patient episode) with a results-over-time "
    "finding: each episode is compared with the same patient's earlier results in this "
    "export. These are counts of decision-support findings for reviewing test use and "
    "follow-up; they are not judgements about any patient or request."
)
_RETEST_NOTE = (
    "RETEST_TOO_SOON: the same analyte was measured within the profile's minimum retest "
    "interval before this episode. The finding does not say which analyte was repeated, so an "
    "episode with it is counted under each of B12, folate and ferritin that it measured: the "
    "rows can overlap and may overstate the repeats of one analyte. The percentage is of the "
    "episodes that measured the analyte."
)


def _serial_section(summary: CohortSummary, plot: bytes | str) -> str:
    rot = summary.results_over_time()
    total = summary.rows
    retest_rows = [
        f'<tr><td>{_esc(analyte)}</td><td class="n">{c["measured"]:,}</td>'
        f'<td class="n">{c["with_retest"]:,}</td>'
        f'<td class="n">{_esc(_fmt_pct(c["with_retest"], c["measured"]))}</td></tr>'
        for analyte, c in rot["retest_by_analyte"].items()
    ]
    n_retest = rot["codes"][_RETEST]
    retest_rows.append(
        f'<tr><td>any (episodes with RETEST_TOO_SOON)</td><td class="n">{total:,}</td>'
        f'<td class="n">{n_retest:,}</td><td class="n">{_esc(_fmt_pct(n_retest, total))}</td></tr>'
    )
    retest_table = (
        "<h3>Episodes with a repeat within the minimum retest interval</h3>"
        "<table><thead><tr><th>analyte measured in the episode</th><th>episodes measuring it"
        "</th><th>with RETEST_TOO_SOON</th><th>%</th></tr></thead><tbody>"
        + "".join(retest_rows)
        + f'</tbody></table><p class="meta">{_esc(_RETEST_NOTE)}</p>'
    )
    code_rows: list[str] = []
    for title, codes, _colour in _SERIAL_GROUPS:
        code_rows.append(f'<tr><th class="group" colspan="4">{_esc(title)}</th></tr>')
        for code in codes:
            n = int(rot["codes"][code])
            code_rows.append(
                f"<tr><td>{_esc(code)}</td><td>{_esc(SERIAL_CODES[code])}</td>"
                f'<td class="n">{n:,}</td><td class="n">{_esc(_fmt_pct(n, total))}</td></tr>'
            )
    any_n = int(rot["episodes_with_any"])
    code_rows.append(
        "<tr><td>any of these</td><td>episodes with at least one finding above</td>"
        f'<td class="n">{any_n:,}</td><td class="n">{_esc(_fmt_pct(any_n, total))}</td></tr>'
    )
    codes_table = (
        "<h3>Findings over time</h3><table><thead><tr><th>finding</th><th>what it counts</th>"
        "<th>episodes</th><th>% of episodes</th></tr></thead><tbody>"
        + "".join(code_rows)
        + "</tbody></table>"
    )
    heading = _PLOT_TITLES["results_over_time"]
    if isinstance(plot, bytes):
        data = base64.b64encode(plot).decode("ascii")
        figure = f'<img alt="{_esc(heading)}" src="data:image/png;base64,{data}">'
    else:
        figure = f'<p class="note">{_esc(plot)}</p>'
    return (
        f'<section id="results-over-time"><h2>{_esc(heading)}</h2><p>{_esc(_SERIAL_INTRO)}</p>'
        f"{retest_table}{codes_table}{figure}</section>"
    )


def render_html(
    summary: CohortSummary,
    path: str | os.PathLike[str],
    *,
    title: str,
    bands: dict[str, float] | None = None,
    profile_id: str = "",
    extra: dict[str, str] | None = None,
) -> None:
    """Write a self-contained HTML cohort report (inline PNG plots, no external assets).

    ``bands`` maps boundary labels to B12 values in pmol/L, drawn as labelled vertical lines;
    a key mentioning "mma" (in ``bands`` or ``extra``, value in µmol/L) is drawn instead as a
    horizontal limit on the MMA-vs-B12 scatter.  ``extra`` key/values (elapsed, rows/s,
    version, …) are listed in the summary table.  A long export (``summary.long_format``) or
    any serial finding adds a "Results over time" section (counts, tables and a bar chart).
    Only aggregates and the anonymous sample are written.  Needs matplotlib (``pip install 'b12labs[report]'``).
    """
    plots = _plots(summary, bands, extra, top_n=15)
    sections: list[str] = []
    for key, content in plots.items():
        if key == "results_over_time":
            sections.append(_serial_section(summary, content))
            continue
        heading = _PLOT_TITLES[key]
        if isinstance(content, bytes):
            data = base64.b64encode(content).decode("ascii")
            body = f'<img alt="{_esc(heading)}" src="data:image/png;base64,{data}">'
        else:
            body = f'<p class="note">{_esc(content)}</p>'
        sections.append(f"<section><h2>{_esc(heading)}</h2>{body}</section>")

    meta = f"{summary.rows:,} rows"
    if profile_id:
        meta += f" · profile {profile_id}"
    doc = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{_esc(title)}</h1><p class="meta">{_esc(meta)}</p></header>'
        f"<section><h2>Summary</h2>{_summary_table(summary, profile_id, extra)}</section>"
        f"{_bands_table(bands)}"
        + "".join(sections)
        + f"<footer><p>{_esc(_FOOTER)} Aggregate counts and an anonymous sample only; "
        "no patient-level identifiers are included.</p></footer>"
        "</body></html>\n"
    )
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(target)
