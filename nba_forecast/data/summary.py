"""Per-season summary of a game table: what the forecasting problem looks like."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nba_forecast.data.schema import FORECAST_MINUTE, HALFTIME_MINUTE, margin_matrix


def season_summary(games: pd.DataFrame) -> pd.DataFrame:
    """One row per (season, season_type) plus an ``all`` row: games, mean and SD of the
    halftime margin, SD of the 6-minute change m_24 - m_18, and the MAE / RMSE of the
    persistence forecast m_24 = m_18."""
    margins = margin_matrix(games, through=HALFTIME_MINUTE)
    frame = pd.DataFrame(
        {
            "season": games["season"].astype("int64").to_numpy(),
            "season_type": games["season_type"].astype(str).to_numpy(),
            "m_24": margins[:, HALFTIME_MINUTE],
            "change": margins[:, HALFTIME_MINUTE] - margins[:, FORECAST_MINUTE],
        }
    )

    def describe(group: pd.DataFrame) -> pd.Series:
        change = group["change"].to_numpy()
        return pd.Series(
            {
                "games": len(group),
                "mean_m24": group["m_24"].mean(),
                "sd_m24": group["m_24"].std(ddof=0),
                "sd_change": change.std(ddof=0),
                "persistence_mae": np.abs(change).mean(),
                "persistence_rmse": np.sqrt(np.mean(change**2)),
            }
        )

    if frame.empty:
        raise ValueError("no games to summarise")
    rows = [describe(g).rename((s, t)) for (s, t), g in frame.groupby(["season", "season_type"])]
    rows.append(describe(frame).rename(("all", "")))
    out = pd.DataFrame(rows)
    out.index = pd.MultiIndex.from_tuples(out.index, names=["season", "season_type"])
    out["games"] = out["games"].astype(int)
    return out.reset_index()
