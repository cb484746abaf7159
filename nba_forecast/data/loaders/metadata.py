"""Who played and when: checking a file's game metadata and joining it onto sampled margins."""

from __future__ import annotations

import pandas as pd

from nba_forecast.data.errors import DataError
from nba_forecast.data.loaders.tables import RowCheck, shown
from nba_forecast.data.schema import (
    COLUMNS,
    SEASON_TYPES,
    TEAM_PATTERN,
    conform,
    empty_games,
    season_from_game_id,
)

META = ["game_date", "home_team", "away_team"]
FIRST_SEASON, LAST_SEASON = 1946, 2100


def game_dates(values: pd.Series) -> pd.Series:
    """Dates as naive midnight datetimes: the date as written, a time or UTC offset after it
    dropped (a game's date is local); NaT where the value is not a date (numbers are not)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_localize(None).dt.normalize()
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.normalize()
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    text = values.astype("string").str.strip()
    # an ISO timestamp's date part; other spellings as pandas reads them
    iso_day = text.str.extract(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ].*)?$")[0]
    text = iso_day.fillna(text)
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    except (ValueError, TypeError):  # mixed UTC offsets in other spellings: one at a time
        parsed = pd.Series([_one_date(v) for v in text], index=values.index)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return pd.to_datetime(parsed).dt.normalize()


def _one_date(value: object) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def metadata_checks(frame: pd.DataFrame) -> list[RowCheck]:
    """Checks on the optional columns ``season, season_type, game_date, home_team,
    away_team`` where the file has them (an empty cell is allowed: it means unknown)."""
    checks: list[RowCheck] = []
    if "season" in frame.columns:
        season = pd.to_numeric(frame["season"], errors="coerce")
        plausible = (season == season.round()) & season.between(FIRST_SEASON, LAST_SEASON)
        checks.append(
            (
                frame["season"].notna() & ~plausible,
                "bad_season",
                "season " + shown(frame["season"]),
                f"the year the season starts in, {FIRST_SEASON}-{LAST_SEASON}, e.g. 2013",
            )
        )
    if "season_type" in frame.columns:
        known = set(SEASON_TYPES.values())
        checks.append(
            (
                frame["season_type"].notna() & ~frame["season_type"].isin(known),
                "bad_season_type",
                "season_type " + shown(frame["season_type"]),
                f"one of {', '.join(sorted(known))}",
            )
        )
    if "game_date" in frame.columns:
        parsed = game_dates(frame["game_date"])
        in_range = parsed.dt.year.between(FIRST_SEASON, LAST_SEASON + 1)
        checks.append(
            (
                frame["game_date"].notna() & ~(parsed.notna() & in_range),
                "bad_date",
                "game_date " + shown(frame["game_date"]) + " is not a date from 1946 to 2101",
                "an ISO date, e.g. 2013-10-29",
            )
        )
    for column in ("home_team", "away_team"):
        if column in frame.columns:
            ok = frame[column].astype("string").str.fullmatch(TEAM_PATTERN).fillna(False)
            checks.append(
                (
                    frame[column].notna() & ~ok.astype(bool),
                    "bad_team",
                    f"{column} " + shown(frame[column]),
                    "a team abbreviation of 2-8 letters or digits, e.g. BOS",
                )
            )
    return checks


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


def _seasons_from_ids(games: pd.DataFrame) -> list[DataError]:
    """Fill missing seasons and season types (in place) from stats.nba.com game ids; an
    error for each game whose season stays unknown."""
    if "season" not in games.columns:
        games["season"] = pd.NA
    if "season_type" not in games.columns:
        games["season_type"] = pd.NA
    problems = []
    for index in games.index[games["season"].isna()]:
        game_id = str(games.at[index, "game_id"])
        try:
            season, kind = season_from_game_id(game_id)
        except ValueError:
            problems.append(
                DataError(
                    "unknown_season",
                    "season cannot be derived from the game id",
                    game_id=game_id,
                    expected="a stats.nba.com game id or a 'season' column",
                )
            )
            continue
        games.at[index, "season"] = season
        if pd.isna(games.at[index, "season_type"]):
            games.at[index, "season_type"] = kind
    return problems


def attach_metadata(
    margins: pd.DataFrame | None,
    from_file: pd.DataFrame | None,
    metadata: pd.DataFrame | None,
) -> tuple[pd.DataFrame, list[DataError]]:
    """A schema-conformant game table from sampled margins, and the games left out because
    their season is unknown.

    Season and season type come from ``season``/``season_type`` columns of ``from_file`` when
    present, else from the stats.nba.com game id. Date and teams come from ``metadata``
    (e.g. the shipped games or a game log) first, then from ``from_file``.
    """
    if margins is None or margins.empty:
        return empty_games(), []
    games = margins.reset_index(drop=True).copy()
    for extra in (from_file, metadata):
        if extra is not None and not extra.empty:
            _add_columns_from(games, extra)
    for column in META:
        if column not in games.columns:
            games[column] = None
    problems = _seasons_from_ids(games)
    games = games[~games["game_id"].isin({p.game_id for p in problems})]
    games["season_type"] = games["season_type"].fillna("regular")
    return conform(games[COLUMNS]), problems
