"""Writing game tables: Parquet (Arrow schema) or CSV, atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from nba_forecast.data.loaders.tables import PARQUET_SUFFIXES
from nba_forecast.data.schema import conform, to_arrow


def write_games(games: pd.DataFrame, path: Path) -> Path:
    """Write to ``path`` (``.parquet`` or ``.csv[.gz]``) via a temporary file and a rename, so
    a crash never leaves a half-written file where a good one was expected."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".parquet"
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if path.name.lower().endswith(PARQUET_SUFFIXES):
            pq.write_table(to_arrow(games), tmp)
        elif path.name.lower().endswith((".csv", ".csv.gz")):
            out = conform(games)
            out["game_date"] = out["game_date"].dt.strftime("%Y-%m-%d")
            out.to_csv(tmp, index=False)
        else:
            raise ValueError(f"{path}: unknown output type; use .parquet, .csv or .csv.gz")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
