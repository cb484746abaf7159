"""Pre-game team strength: each team's exponentially weighted average final margin over its
EARLIER games, and the home-minus-away difference as a feature.

Only games strictly before a game's date count (a team plays at most once a day), so the
feature can be computed for a live game. Franchise renames share one history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nba_forecast.data.splits import order_dates

# renamed or relocated franchises -> one name, so a move does not reset the history
FRANCHISE = {"NJN": "BKN", "SEA": "OKC", "VAN": "MEM", "CHH": "NOP", "NOH": "NOP", "NOK": "NOP"}


def team_strength(games: pd.DataFrame, halflife_games: float = 20.0) -> pd.Series:
    """Home strength minus away strength before each game (points; 0 with no history).

    A game's own result never counts; games without a final score (first half only) use
    their halftime margin doubled as a stand-in, since the final margin is unknown.
    """
    if halflife_games <= 0:
        raise ValueError("halflife_games must be positive")
    final = (games["final_home"] - games["final_away"]).astype("Float64")
    margin = final.fillna(2 * games["m_24"].astype("Float64")).astype(float).to_numpy()
    dates = order_dates(games).to_numpy()
    long = pd.DataFrame(
        {
            "game": np.concatenate([np.arange(len(games))] * 2),
            "team": pd.concat([games["home_team"], games["away_team"]])
            .replace(FRANCHISE)
            .fillna("?")
            .to_numpy(),
            "side": np.repeat([1.0, -1.0], len(games)),
            "date": np.concatenate([dates, dates]),
        }
    )
    long["margin"] = long["side"] * np.concatenate([margin, margin])
    long = long.sort_values(["team", "date", "game"], kind="stable")
    previous = long.groupby("team")["margin"].shift(1)
    long["strength"] = (
        previous.groupby(long["team"]).transform(
            lambda s: s.ewm(halflife=halflife_games, ignore_na=True).mean()
        )
    ).fillna(0.0)
    long.loc[long["team"] == "?", "strength"] = 0.0
    by_side = long.set_index(["side", "game"])["strength"]
    home = by_side.loc[1.0].sort_index().to_numpy()
    away = by_side.loc[-1.0].sort_index().to_numpy()
    return pd.Series(home - away, index=games.index, name="team_strength")
