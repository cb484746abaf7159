"""Pre-game features: what is known about the two teams before tip-off.

* ``team_strength``: each team's exponentially weighted average final margin over its
  EARLIER games; the feature is home minus away (points, 0 with no history).
* ``back_to_back``: +1 if the home team played the day before, -1 if the away team did
  (0 if both or neither). Tired teams lose ground: about 0.3 points per 6 minutes.

Only games strictly before a game's date count (a team plays at most once a day), so the
features exist for a live game. Franchise renames share one history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nba_forecast.data.splits import order_dates

# renamed or relocated franchises -> one name, so a move does not reset the history
FRANCHISE = {"NJN": "BKN", "SEA": "OKC", "VAN": "MEM", "CHH": "NOP", "NOH": "NOP", "NOK": "NOP"}
FEATURES = ["team_strength", "back_to_back"]
DEFAULT_HALFLIFE_GAMES = 15.0


def _team_games(games: pd.DataFrame) -> pd.DataFrame:
    """Two rows per game (home side +1, away side -1), sorted by team and date."""
    n = len(games)
    dates = order_dates(games).to_numpy()
    teams = pd.concat([games["home_team"], games["away_team"]]).replace(FRANCHISE)
    long = pd.DataFrame(
        {
            "game": np.concatenate([np.arange(n), np.arange(n)]),
            "team": teams.fillna("?").to_numpy(),
            "side": np.repeat([1.0, -1.0], n),
            "date": np.concatenate([dates, dates]),
        }
    )
    return long.sort_values(["team", "date", "game"], kind="stable")


def _home_minus_away(long: pd.DataFrame, column: str, n: int) -> np.ndarray:
    values = long[column].where(long["team"] != "?", 0.0).to_numpy(dtype=float)
    out = np.zeros(n)
    np.add.at(out, long["game"].to_numpy(), long["side"].to_numpy() * values)
    return out


def pregame_features(
    games: pd.DataFrame, halflife_games: float = DEFAULT_HALFLIFE_GAMES
) -> pd.DataFrame:
    """``team_strength`` and ``back_to_back`` for every game (columns ``FEATURES``).

    A game's own result never counts. Games without a final score (first half only) use
    twice their halftime margin as a stand-in for the final margin.
    """
    if halflife_games <= 0:
        raise ValueError("halflife_games must be positive")
    final = (games["final_home"] - games["final_away"]).astype("Float64")
    margin = final.fillna(2 * games["m_24"].astype("Float64")).astype(float).to_numpy()
    long = _team_games(games)
    long["margin"] = long["side"] * margin[long["game"].to_numpy()]
    previous = long.groupby("team")["margin"].shift(1)
    long["strength"] = (
        previous.groupby(long["team"])
        .transform(lambda s: s.ewm(halflife=halflife_games, ignore_na=True).mean())
        .fillna(0.0)
    )
    rest = long["date"] - long.groupby("team")["date"].shift(1)
    long["tired"] = (rest == pd.Timedelta(days=1)).astype(float)
    n = len(games)
    return pd.DataFrame(
        {
            "team_strength": _home_minus_away(long, "strength", n),
            "back_to_back": _home_minus_away(long, "tired", n),
        },
        index=games.index,
    )


def latest_team_strength(
    games: pd.DataFrame, halflife_games: float = DEFAULT_HALFLIFE_GAMES
) -> dict[str, float]:
    """Each team's strength after all of ``games`` (for forecasting its next game), by the
    abbreviations of the newest season and the franchise names."""
    final = (games["final_home"] - games["final_away"]).astype("Float64")
    margin = final.fillna(2 * games["m_24"].astype("Float64")).astype(float).to_numpy()
    long = _team_games(games)
    long["margin"] = long["side"] * margin[long["game"].to_numpy()]
    strength = long.groupby("team")["margin"].agg(
        lambda s: s.ewm(halflife=halflife_games, ignore_na=True).mean().iloc[-1]
    )
    table = {str(team): float(value) for team, value in strength.items() if team != "?"}
    for old, new in FRANCHISE.items():
        if new in table:
            table.setdefault(old, table[new])
    return table
