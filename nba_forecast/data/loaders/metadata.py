"""Who played and when: joining game metadata onto margins sampled from play-by-play."""

from __future__ import annotations

import pandas as pd

from nba_forecast.data.errors import DataError
from nba_forecast.data.schema import COLUMNS, conform, empty_games, season_from_game_id

META = ["game_date", "home_team", "away_team"]


def _add_columns_from(games: pd.DataFrame, extra: pd.DataFrame) -> None:
    """Copy ``extra``'s date, teams and season onto ``games`` (in place) by game id; its
    values win over those ``games`` already has."""
    extra = extra.drop_duplicates("game_id").set_index("game_id")
    for column in [*META, "season", "season_type"]:
        if column not in extra.columns:
            continue
        values = games["game_id"].map(extra[column])
        if column in games.columns:
            # metadata (applied second) wins over the file's own values
            games[column] = values.where(values.notna(), games[column])
        else:
            games[column] = values


def _seasons_from_ids(game_ids: pd.Series) -> dict[str, tuple[int, str]]:
    """``(season, season_type)`` per stats.nba.com game id; any other id is an error."""
    derived = {}
    for game_id in game_ids:
        try:
            derived[game_id] = season_from_game_id(str(game_id))
        except ValueError:
            raise DataError(
                "unknown_season",
                "season cannot be derived from the game id",
                game_id=str(game_id),
                expected="a stats.nba.com game id or a 'season' column",
            ) from None
    return derived


def _fill_seasons(games: pd.DataFrame) -> None:
    """Fill missing seasons and season types (in place) from the game ids."""
    unknown = games if "season" not in games.columns else games[games["season"].isna()]
    derived = _seasons_from_ids(unknown["game_id"])
    season = games["game_id"].map(lambda g: derived.get(g, (None, None))[0])
    kind = games["game_id"].map(lambda g: derived.get(g, (None, None))[1])
    games["season"] = season if "season" not in games.columns else games["season"].fillna(season)
    games["season_type"] = (
        kind if "season_type" not in games.columns else games["season_type"].fillna(kind)
    )


def attach_metadata(
    margins: pd.DataFrame | None,
    from_file: pd.DataFrame | None,
    metadata: pd.DataFrame | None,
) -> pd.DataFrame:
    """A schema-conformant game table from sampled margins.

    Season and season type come from ``season``/``season_type`` columns of ``from_file`` when
    present, else from the stats.nba.com game id. Date and teams come from ``metadata``
    (e.g. the shipped games or a game log) first, then from ``from_file``.
    """
    if margins is None or margins.empty:
        return empty_games()
    games = margins.reset_index(drop=True).copy()
    for extra in (from_file, metadata):
        if extra is not None and not extra.empty:
            _add_columns_from(games, extra)
    for column in META:
        if column not in games.columns:
            games[column] = None
    if "season" not in games.columns or games["season"].isna().any():
        _fill_seasons(games)
    if "season_type" not in games.columns:
        games["season_type"] = "regular"
    return conform(games[COLUMNS])
