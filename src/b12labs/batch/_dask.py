"""Scale-out on Dask: the same ``score_frame`` per partition, on a ``distributed`` cluster.

``score_dask(ddf)`` maps :func:`~b12labs.batch.score_frame` over the partitions with the
column mapping detected once (so every partition is scored the same way) and an explicit
``meta``. The CLI (``--engine dask``) reads the file with ``dask.dataframe.read_csv`` /
``read_parquet`` so workers load their own partitions (the graph never carries the data), and
connects to ``--scheduler ADDRESS`` or starts a ``LocalCluster`` of ``--workers N``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import InputFormatError, MissingExtraError
from ..profiles import DEFAULT_PROFILE, Profile, load_profile
from ._columns import ColumnMap, detect_columns
from ._frame import check_units, output_columns, score_frame

if TYPE_CHECKING:
    from ._file import ScoreOptions

__all__ = ["score_dask", "score_file_dask"]


def _dask() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError:
        raise MissingExtraError("scoring on Dask", "dask", "dask[dataframe]") from None
    return dd


def _score_partition(
    part: pd.DataFrame,
    cmap: ColumnMap,
    profile: Profile,
    decimal: str,
    date_format: str | None = None,
    columns_out: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    # one thread per partition: Dask already runs partitions in parallel
    scored = score_frame(
        part,
        profile=profile,
        decimal=decimal,
        column_map=cmap,
        threads=1,
        date_format=date_format,
        columns_out=columns_out,
    )
    # plain strings across partitions: categories differ from one partition to the next,
    # and a Dask frame's metadata cannot know them in advance
    for name in scored.columns:
        if isinstance(scored[name].dtype, pd.CategoricalDtype):
            scored[name] = scored[name].astype("string")
    return scored


def score_dask(
    ddf: Any,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    profile: str | Path | Profile = DEFAULT_PROFILE,
    decimal: str = ".",
    date_format: str | None = None,
    columns_out: str | Sequence[str] | None = None,
    canonical: bool = True,
) -> Any:
    """Score a Dask DataFrame lazily; returns a Dask DataFrame with the ``b12labs_*`` columns.

    Works on any scheduler; with ``distributed`` the partitions are scored on the workers.
    Row order within and across partitions is kept. ``columns_out`` / ``canonical`` choose
    the b12labs columns as in :func:`~b12labs.batch.score_frame`.
    """
    selected = output_columns(columns_out, canonical=canonical)  # before any work
    _dask()
    prof = load_profile(profile)
    cmap = detect_columns([str(c) for c in ddf.columns], mapping=columns, units=units)
    args = (cmap, prof, decimal, date_format, selected)
    meta = _score_partition(ddf._meta.astype("string"), *args)
    return ddf.map_partitions(_score_partition, *args, meta=meta)


def score_file_dask(
    path: Path, output: str, cmap: ColumnMap, options: ScoreOptions, profile: Profile
) -> int:
    """The CLI's ``--engine dask``: read, score on a cluster, write one output file."""
    dd = _dask()
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("scoring on a Dask cluster", "dask", "distributed") from None
    if output == "-":
        raise InputFormatError("--engine dask writes to a file; give -o OUTPUT")
    name = str(path).lower()
    if name.endswith((".parquet", ".pq")):
        ddf = dd.read_parquet(str(path))
    elif name.endswith((".xlsx", ".xls")):
        raise InputFormatError("--engine dask reads CSV or Parquet, not Excel")
    else:
        # ~16 MB partitions (~200k rows): bounded memory on the workers and in the client
        blocksize = None if name.endswith(".gz") else "16MB"
        ddf = dd.read_csv(
            str(path),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            blocksize=blocksize,
            encoding=options.encoding or "utf-8-sig",
            sep=options.sep,
        )
    ddf = ddf.astype("string")
    check_units(ddf.head(1000, npartitions=-1), cmap)
    args = (cmap, profile, options.decimal, options.date_format, options.selected)
    meta = _score_partition(ddf._meta, *args)
    scored = ddf.map_partitions(_score_partition, *args, meta=meta)
    cluster: Any = None
    if options.scheduler:
        client: Any = distributed.Client(options.scheduler)  # type: ignore[no-untyped-call]
    else:
        cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=options.workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)  # type: ignore[no-untyped-call]
    try:
        from ._io import AtomicWriter

        writer = AtomicWriter(output, inputs=[path])
        rows = 0
        try:
            # partitions are scored on the workers, a bounded window at a time (memory stays
            # flat), and written back in input order
            window = max(2, len(client.scheduler_info().get("workers", {})) + 1)
            in_flight: deque[Any] = deque()
            for i in range(scored.npartitions):
                in_flight.append(client.compute(scored.get_partition(i)))
                if len(in_flight) >= window:
                    part = in_flight.popleft().result()
                    writer.write(part)
                    rows += len(part)
            while in_flight:
                part = in_flight.popleft().result()
                writer.write(part)
                rows += len(part)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return rows
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
