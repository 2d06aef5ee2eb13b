"""Scale-out on Dask: the same scoring per partition on a real distributed LocalCluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from b12labs.batch import score_dask, score_frame
from tests._paths import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def export() -> pd.DataFrame:
    return pd.read_csv(REPO / "examples" / "export.csv", dtype=str, keep_default_na=False)


def test_score_dask_on_a_local_cluster_matches_pandas(export: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    export.to_csv(path, index=False)
    ddf = dd.read_csv(str(path), dtype=str, keep_default_na=False, na_filter=False, blocksize=60_000)
    assert ddf.npartitions > 1
    expected = score_frame(export)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        scored = score_dask(ddf).compute()
    scored = scored.reset_index(drop=True)
    assert len(scored) == len(export)
    for col in ("specimen_id", "b12labs_status", "b12labs_codes", "b12labs_actions", "b12labs_error"):
        assert scored[col].astype(str).tolist() == expected[col].astype(str).tolist(), col


def test_cli_engine_dask(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "b12labs", "score", "examples/export.csv", "-o", str(tmp_path / "d.csv"),
         "--engine", "dask", "--workers", "2", "--chunksize", "500"],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    pandas_out = subprocess.run(
        [sys.executable, "-m", "b12labs", "score", "examples/export.csv", "-o", str(tmp_path / "p.csv"), "--quiet"],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )
    assert pandas_out.returncode == 0
    assert (tmp_path / "d.csv").read_text() == (tmp_path / "p.csv").read_text()
