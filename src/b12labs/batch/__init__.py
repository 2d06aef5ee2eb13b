"""Batch scoring of lab exports: wide frames, long (one result per row) exports, files, Dask."""

from __future__ import annotations

from typing import Any

from ._columns import ColumnMap, detect_columns
from ._frame import OUTPUT_COLUMNS, score_frame

__all__ = ["OUTPUT_COLUMNS", "ColumnMap", "detect_columns", "score_dask", "score_frame"]


def score_dask(ddf: Any, **kwargs: Any) -> Any:
    """Score a Dask DataFrame partition by partition (extra ``dask``); see :mod:`b12labs.batch._dask`."""
    from ._dask import score_dask as _score_dask

    return _score_dask(ddf, **kwargs)
