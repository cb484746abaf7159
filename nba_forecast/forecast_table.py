"""Forecasting games from a table: margins by minute and team names in, forecasts out.

``forecast_games(model, games)`` builds the model input as training and serving do: m_0..m_18,
then the pre-game features (``nba_forecast.data.pregame``) from a history of finished games
(the shipped ones unless given) plus the table's own games, each game seeing only games
before its date. A table game that is also in the history (a team plays once a day) is taken
from the table, so its own result never leaks into its features.

The table: ``game_date``, ``home_team``, ``away_team`` and ``m_0``..``m_18`` (the shipped
margins files qualify as they are); optional ``game_id`` (carried to the output), ``season``
(orders undated games, as in training), ``back_to_back`` (-1, 0 or +1; computed from the
dates when absent), and ``final_home``/``final_away`` or ``m_24`` (the result of a finished
game, which later games of the table then see). Teams are the history's abbreviations; an
unknown one is an error, never an average team.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nba_forecast.data.pregame import FEATURES, FRANCHISE, pregame_features
from nba_forecast.data.schema import FORECAST_MINUTE, MARGIN_COLUMNS
from nba_forecast.data.splits import order_dates
from nba_forecast.serving.basketball import (
    MARGIN_BURST,
    MARGIN_RATE,
    TEAM_BURST,
    TEAM_RATE,
    check_margin_path,
)

PATH_COLUMNS = MARGIN_COLUMNS[: FORECAST_MINUTE + 1]  # m_0 .. m_18
REQUIRED_COLUMNS = ["game_date", "home_team", "away_team", *PATH_COLUMNS]
OUTPUT_COLUMNS = ["game_date", "home_team", "away_team", "m_18", *FEATURES]
MAX_LISTED = 10
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")


class GameTableError(ValueError):
    """A table of games that cannot be forecast; the message names the rows (1 = the first
    game) and what was expected."""


def read_games_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A table of games from a CSV (``.csv``, ``.csv.gz``) or Parquet file."""
    source = Path(path)
    name = source.name.lower()
    if not name.endswith(TABLE_SUFFIXES):
        raise GameTableError(f"{source}: expected a {', '.join(TABLE_SUFFIXES)} file")
    if not source.is_file():
        raise GameTableError(f"{source}: no such file")
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(source)
        return pd.read_csv(source, dtype={"game_id": str, "home_team": str, "away_team": str})
    except (OSError, ValueError, pd.errors.ParserError) as error:  # pyarrow's are ValueErrors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GameTableError(f"{source}: not a readable table ({first})") from None


def _rows(mask: Any, table: pd.DataFrame) -> str:
    """The rows where ``mask`` holds, 1-based, with their game ids when the table has them."""
    positions = np.flatnonzero(np.asarray(mask, dtype=bool))
    shown = [str(p + 1) for p in positions[:MAX_LISTED]]
    if "game_id" in table.columns:
        ids = table["game_id"].astype(str).to_numpy()
        shown = [f"{p + 1} ({ids[p]})" for p in positions[:MAX_LISTED]]
    more = f" and {len(positions) - MAX_LISTED} more" if len(positions) > MAX_LISTED else ""
    return f"row{'s' if len(positions) > 1 else ''} {', '.join(shown)}{more}"


def _margins(table: pd.DataFrame) -> np.ndarray:
    """m_0..m_18 as whole numbers that a basketball game can produce."""
    columns = {}
    for column in PATH_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce").astype("Float64")
        bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(float, na_value=np.nan))
        if bad.any():
            raise GameTableError(f"{column} is empty or not a number in {_rows(bad, table)}")
        columns[column] = values.to_numpy(float)
    margins = np.column_stack([columns[c] for c in PATH_COLUMNS])
    fractional = (margins != np.round(margins)).any(axis=1)
    if fractional.any():
        raise GameTableError(
            f"margins must be whole points: fractions in {_rows(fractional, table)}"
        )
    if (margins[:, 0] != 0).any():
        raise GameTableError(f"m_0 must be 0 (tip-off) in {_rows(margins[:, 0] != 0, table)}")
    gap = np.subtract.outer(np.arange(FORECAST_MINUTE + 1), np.arange(FORECAST_MINUTE + 1))
    # the server's bounds (``serving.basketball``) for every pair of minutes, every game
    limit = np.minimum(MARGIN_BURST + MARGIN_RATE * gap, TEAM_BURST + TEAM_RATE * 60 * gap)
    moved = np.abs(margins[:, :, None] - margins[:, None, :])
    impossible = ((gap > 0) & (moved > limit)).any(axis=(1, 2))
    if impossible.any():
        first = int(np.flatnonzero(impossible)[0])
        try:
            check_margin_path(list(margins[first]))
        except ValueError as error:
            raise GameTableError(
                f"impossible margins in {_rows(impossible, table)}: {error}"
            ) from None
    return margins


def _teams(table: pd.DataFrame, known: set[str]) -> None:
    for column in ("home_team", "away_team"):
        missing = table[column].isna().to_numpy()
        if missing.any():
            raise GameTableError(f"{column} is empty in {_rows(missing, table)}")
    teams = pd.concat([table["home_team"], table["away_team"]]).astype(str)
    unknown = sorted(set(teams) - known)
    if not unknown:
        return
    bad = ~table["home_team"].astype(str).isin(known) | ~table["away_team"].astype(str).isin(known)
    hints = [f"{t!r} (did you mean {t.upper()!r}?)" for t in unknown if t.upper() in known]
    hint = f"; abbreviations are upper case: {', '.join(hints)}" if hints else ""
    raise GameTableError(
        f"unknown team(s) {', '.join(repr(t) for t in unknown[:MAX_LISTED])} in "
        f"{_rows(bad.to_numpy(), table)}{hint}; known teams: {', '.join(sorted(known))}"
    )


def _dates(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each game's date and season (undated games need a season: they are ordered after
    its last dated game, as in training)."""
    dates = pd.to_datetime(table["game_date"], errors="coerce")
    unparsed = dates.isna() & table["game_date"].notna()
    if unparsed.any():
        raise GameTableError(f"game_date is not a date (YYYY-MM-DD) in {_rows(unparsed, table)}")
    if "season" in table.columns:
        season = pd.to_numeric(table["season"], errors="coerce")
    else:  # a season starts in the autumn: January 2015 is season 2014
        season = dates.dt.year - (dates.dt.month < 7).astype("Int64")
    undated = dates.isna() & season.isna()
    if undated.any():
        raise GameTableError(
            f"game_date is empty in {_rows(undated, table)}; a date (or a season) is needed "
            "for the pre-game features"
        )
    return dates.dt.as_unit("s"), season.astype("Int16")


def _back_to_back(table: pd.DataFrame) -> pd.Series | None:
    if "back_to_back" not in table.columns:
        return None
    values = pd.to_numeric(table["back_to_back"], errors="coerce")
    bad = ~values.isin([-1, 0, 1])
    if bad.any():
        raise GameTableError(f"back_to_back must be -1, 0 or 1 in {_rows(bad, table)}")
    return values.astype(float)


def known_teams(history: pd.DataFrame) -> set[str]:
    """The team abbreviations a history knows (renamed franchises under both names)."""
    teams = set(pd.concat([history["home_team"], history["away_team"]]).dropna().astype(str))
    return teams | {old for old, new in FRANCHISE.items() if new in teams}


def game_features(games: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table checked, with ``m_0``..``m_18`` as numbers and its pre-game features
    (``FEATURES``) as of each game's date, from ``history`` (default: the shipped games)."""
    if not isinstance(games, pd.DataFrame):
        raise TypeError(f"games must be a pandas DataFrame, got {type(games).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in games.columns]
    if missing:
        raise GameTableError(
            f"the games table lacks column(s) {', '.join(missing)}; it needs game_date, "
            f"home_team, away_team and m_0..m_{FORECAST_MINUTE}"
        )
    if games.empty:
        raise GameTableError("the games table has no rows")
    if history is None:
        from nba_forecast.data.shipped import load_shipped_games

        history = load_shipped_games()
    table = games.reset_index(drop=True)
    if "game_id" in table.columns:
        twice = table["game_id"].notna() & table["game_id"].duplicated(keep=False)
        if twice.any():
            raise GameTableError(f"a game id appears more than once: {_rows(twice, table)}")
    margins = _margins(table)
    _teams(table, known_teams(history))
    dates, season = _dates(table)
    given_rest = _back_to_back(table)
    own = pd.DataFrame(
        {
            "game_id": _optional_ids(table),
            "game_date": dates,
            "season": season,
            "home_team": table["home_team"].astype(str),
            "away_team": table["away_team"].astype(str),
            "final_home": _optional(table, "final_home"),
            "final_away": _optional(table, "final_away"),
            "m_24": _optional(table, "m_24"),
        }
    )
    features = _pregame(own, history)
    if given_rest is not None:
        features["back_to_back"] = given_rest.to_numpy()
    out = table.copy()
    out[PATH_COLUMNS] = margins
    out["game_date"] = dates
    for name in FEATURES:
        out[name] = features[name].to_numpy()
    out.index = games.index
    return out


def _optional_ids(table: pd.DataFrame) -> pd.Series:
    if "game_id" not in table.columns:
        return pd.Series(pd.NA, index=table.index, dtype="string")
    return table["game_id"].astype("string")


def _optional(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        return pd.Series(pd.NA, index=table.index, dtype="Float64")
    return pd.to_numeric(table[column], errors="coerce").astype("Float64")


def _overlap(own: pd.DataFrame, history: pd.DataFrame) -> np.ndarray:
    """History games that are games of the table: the same game id, or a dated game of
    one of the table's teams on its date (a team plays at most once a day)."""
    same = history["game_id"].astype(str).isin(own["game_id"].dropna()).to_numpy()
    day = pd.to_datetime(history["game_date"]).dt.normalize()
    dated = own[own["game_date"].notna()]
    busy = set()
    for side in ("home_team", "away_team"):
        busy |= set(zip(dated["game_date"].dt.normalize(), dated[side], strict=True))
    home = pd.Series(list(zip(day, history["home_team"], strict=True)), index=history.index)
    away = pd.Series(list(zip(day, history["away_team"], strict=True)), index=history.index)
    return same | (home.isin(busy) | away.isin(busy)).to_numpy()


def _pregame(own: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The pre-game features of the table's games, computed on the history (without the
    table's own games) and the table together, ordered as training orders games: by date,
    then game id (a game without an id after the history's games of its date)."""
    columns = list(own.columns)
    past = history.loc[~_overlap(own, history), columns].astype(own.dtypes.to_dict())
    both = pd.concat([past, own], ignore_index=True)
    position = np.concatenate([np.full(len(past), -1), np.arange(len(own))])
    ids = both["game_id"].astype(str).where(both["game_id"].notna(), "~")  # "~": after digits
    order = pd.DataFrame({"date": order_dates(both), "id": ids}).sort_values(
        ["date", "id"], kind="stable"
    )
    ordered = both.loc[order.index].reset_index(drop=True)
    features = pregame_features(ordered)
    mine = position[order.index.to_numpy()]
    return features[mine >= 0].set_axis(mine[mine >= 0]).sort_index()


def _model_features(model: Any) -> list[str]:
    """The pre-game feature columns the model was fit on (after m_0..m_18)."""
    n = getattr(model, "n_features_in_", None)
    if n is None:
        raise ValueError(f"{type(model).__name__} is not fitted: call fit (or load one) first")
    extra = int(n) - len(PATH_COLUMNS)
    if extra == 0:
        return []
    if extra == len(FEATURES):
        return list(FEATURES)
    raise ValueError(
        f"the model takes {n} input columns; forecast_games builds {len(PATH_COLUMNS)} "
        f"(m_0..m_18) or {len(PATH_COLUMNS) + len(FEATURES)} (with {', '.join(FEATURES)})"
    )


def forecast_games(
    model: Any,
    games: pd.DataFrame | str | os.PathLike[str],
    *,
    alpha: float | None = None,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecast every game of a table (a DataFrame, or a CSV/Parquet path; see the module
    docstring): one row per game, same index, with ``game_id`` (when given), ``game_date``,
    the teams, ``m_18``, the pre-game features, ``forecast`` and, for a model with an
    interval (``HalftimeEnsemble``), ``lower`` and ``upper`` at level ``alpha`` (None: the
    model's calibrated level, as served). ``model``: a fitted model or a saved model
    directory. Bad input is a ``GameTableError`` naming the rows."""
    return forecast_details(model, games, alpha=alpha, history=history)[0]


def forecast_details(
    model: Any,
    games: pd.DataFrame | str | os.PathLike[str],
    *,
    alpha: float | None = None,
    history: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """``forecast_games`` and the model input it built (one row per game)."""
    if isinstance(model, str | os.PathLike):
        from nba_forecast.models.loading import load_model

        model = load_model(model)
    table = games if isinstance(games, pd.DataFrame) else read_games_table(games)
    names = _model_features(model)  # before the work: a wrong model fails fast
    checked = game_features(table, history)
    X = checked[PATH_COLUMNS + names].to_numpy(dtype=np.float64)
    out = checked[[c for c in ("game_id", *OUTPUT_COLUMNS) if c in checked.columns]].copy()
    if hasattr(model, "predict_details"):
        details = model.predict_details(X, alpha)
        out["forecast"], out["lower"], out["upper"] = details.forecast, details.lower, details.upper
    elif alpha is not None:
        raise ValueError(f"{type(model).__name__} has no interval: alpha does not apply")
    else:
        out["forecast"] = model.predict(X)
    return out, X
