"""Batch scoring of lab exports: wide frames, long (one result per row) exports, files, Dask."""

from __future__ import annotations

from typing import Any

from ._columns import ColumnMap, detect_columns
from ._file import RunSummary, ScoreOptions, score_file
from ._frame import OUTPUT_COLUMNS, VALUE_COLUMNS, score_frame
from ._long import score_long

__all__ = [
    "OUTPUT_COLUMNS",
    "VALUE_COLUMNS",
    "ColumnMap",
    "RunSummary",
    "ScoreOptions",
    "detect_columns",
    "score_dask",
    "score_file",
    "score_frame",
    "score_long",
]


def score_dask(ddf: Any, **kwargs: Any) -> Any:
    """Score a Dask DataFrame partition by partition (extra ``dask``).

    Takes the keyword arguments of :func:`score_frame`; see :mod:`b12labs.batch._dask`.
    """
    from ._dask import score_dask as _score_dask

    return _score_dask(ddf, **kwargs)
