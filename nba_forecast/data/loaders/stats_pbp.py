"""stats.nba.com play-by-play (PlayByPlayV2 CSV) -> minute margins.

A scoring event is a row with ``EVENTMSGTYPE`` 1 (made field goal) or 3 (free throw) and a
non-empty ``SCORE`` (``"AWAY - HOME"``). Other rows are ignored even when they carry a score:
start/end-of-period rows sometimes hold stale ones. Files hold one game each (as in the
public archives) or several; a directory of files can be loaded in one call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from nba_forecast.data.errors import DataError, LoadResult, OnError, collect
from nba_forecast.data.events import elapsed_seconds, margins_from_events
from nba_forecast.data.loaders.clock import parse_clock
from nba_forecast.data.loaders.metadata import attach_metadata
from nba_forecast.data.loaders.tables import (
    file_rows,
    first_row_errors,
    normalize_game_ids,
    read_table,
    require_columns,
)

logger = logging.getLogger(__name__)

REQUIRED = ["GAME_ID", "PERIOD", "PCTIMESTRING", "SCORE", "EVENTMSGTYPE"]
FIELD_GOAL, FREE_THROW = "1", "3"
SCORE_PATTERN = r"\s*(\d+)\s*-\s*(\d+)\s*"


def _scoring_events(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[DataError]]:
    """Scoring rows as an events frame, plus row-level parse errors (one per game)."""
    frame = frame.assign(row=file_rows(frame), GAME_ID=normalize_game_ids(frame["GAME_ID"]))
    event_type = frame["EVENTMSGTYPE"].astype("string").str.strip()
    scoring = frame[event_type.isin([FIELD_GOAL, FREE_THROW]) & frame["SCORE"].notna()].copy()
    scoring["kind"] = np.where(event_type[scoring.index] == FREE_THROW, "ft", "fg")

    score = scoring["SCORE"].astype("string").str.extract(rf"^{SCORE_PATTERN}$")
    period = pd.to_numeric(scoring["PERIOD"], errors="coerce")
    remaining = parse_clock(scoring["PCTIMESTRING"])
    checks = [
        (
            score[0].isna(),
            "bad_score_string",
            "unparseable SCORE " + scoring["SCORE"].map(repr),
            "'AWAY - HOME', e.g. '12 - 10'",
        ),
        (
            period.isna() | (period != period.round()),
            "bad_period",
            "unparseable PERIOD " + scoring["PERIOD"].map(repr),
            "an integer period, 1-4 or 5+ for overtime",
        ),
        (
            remaining.isna(),
            "unparseable_clock",
            "unparseable PCTIMESTRING " + scoring["PCTIMESTRING"].map(repr),
            "time remaining as mm:ss, e.g. '11:39'",
        ),
    ]
    errors = first_row_errors(scoring["GAME_ID"], scoring["row"], checks, source)
    scoring = scoring[~scoring["GAME_ID"].isin({e.game_id for e in errors})]
    period_int = period[scoring.index].astype(np.int64).to_numpy()
    events = pd.DataFrame(
        {
            "game_id": scoring["GAME_ID"].astype(str).to_numpy(),
            "period": period_int,
            "elapsed_s": elapsed_seconds(
                np.clip(period_int, 1, None), remaining[scoring.index].to_numpy().astype(np.int64)
            ),
            "home": score.loc[scoring.index, 1].astype(np.int64).to_numpy(),
            "away": score.loc[scoring.index, 0].astype(np.int64).to_numpy(),
            "row": scoring["row"].to_numpy(),
            "kind": scoring["kind"].to_numpy(),
        }
    )
    return events, errors


def _teams(frame: pd.DataFrame) -> pd.DataFrame:
    """Home/away abbreviations where the file has PLAYER1_TEAM_ABBREVIATION (most common team
    on rows described from the home, respectively visitor, side)."""
    columns = ["game_id", "home_team", "away_team"]
    if "PLAYER1_TEAM_ABBREVIATION" not in frame.columns:
        return pd.DataFrame(columns=columns)
    out = []
    for game_id, rows in frame.groupby(normalize_game_ids(frame["GAME_ID"])):
        team = rows["PLAYER1_TEAM_ABBREVIATION"]
        home = team[rows["HOMEDESCRIPTION"].notna()].mode() if "HOMEDESCRIPTION" in rows else None
        away = (
            team[rows["VISITORDESCRIPTION"].notna()].mode()
            if "VISITORDESCRIPTION" in rows
            else None
        )
        out.append(
            [
                game_id,
                home.iloc[0] if home is not None and len(home) else None,
                away.iloc[0] if away is not None and len(away) else None,
            ]
        )
    return pd.DataFrame(out, columns=columns)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.lower().endswith((".csv", ".csv.gz")))
        if not files:
            raise DataError("no_input_files", "no .csv or .csv.gz files", source=str(path))
        return files
    return [path]


def _read_file(file: Path, problems: list[DataError], on_error: OnError) -> pd.DataFrame | None:
    """The file's rows, or None once its problem is collected: in a directory, a broken file
    is one bad game, reported before going on with the others."""
    source = str(file)
    try:
        frame = read_table(file)
        if frame.empty:
            raise DataError("empty_file", "the file has a header but no rows", source=source)
        require_columns(frame, REQUIRED, source)
    except DataError as file_error:
        collect(problems, file_error, on_error)
        return None
    return frame


def _report_duplicates(
    events: pd.DataFrame,
    seen: dict[str, str],
    source: str,
    problems: list[DataError],
    on_error: OnError,
) -> None:
    """Collect a problem for each game of ``events`` already loaded from an earlier file."""
    for game_id in events["game_id"].unique():
        if game_id in seen:
            duplicate = DataError(
                "duplicate_game_id",
                f"game already loaded from {seen[game_id]}",
                source=source,
                game_id=game_id,
                expected="each game id once",
            )
            collect(problems, duplicate, on_error)


def _file_margins(
    frame: pd.DataFrame,
    source: str,
    seen: dict[str, str],
    problems: list[DataError],
    on_error: OnError,
) -> pd.DataFrame:
    """Minute margins of the file's valid games that no earlier file had; records them in
    ``seen`` (game id -> file) and collects the problems of the others."""
    events, row_errors = _scoring_events(frame, source)
    for row_error in row_errors:
        collect(problems, row_error, on_error)
    _report_duplicates(events, seen, source, problems, on_error)
    events = events[~events["game_id"].isin(seen)]
    game_margins, event_errors = margins_from_events(events, check_steps=True, on_error="skip")
    for event_error in event_errors:
        collect(problems, event_error.with_source(source), on_error)
    seen.update(dict.fromkeys(game_margins["game_id"], source))
    return game_margins


def load_stats_pbp(
    paths: Path | Iterable[Path],
    *,
    metadata: pd.DataFrame | None = None,
    on_error: OnError = "raise",
) -> LoadResult:
    """Load stats.nba.com play-by-play files (or directories of them) into a game table.

    ``metadata`` (columns ``game_id, game_date, home_team, away_team``) fills what the
    play-by-play lacks; season and season type come from the game id.
    """
    files = [f for p in ([paths] if isinstance(paths, Path) else paths) for f in _files(p)]
    problems: list[DataError] = []
    margins, teams = [], []
    seen: dict[str, str] = {}
    for file in files:
        frame = _read_file(file, problems, on_error)
        if frame is None:
            continue
        margins.append(_file_margins(frame, str(file), seen, problems, on_error))
        teams.append(_teams(frame))
    games = attach_metadata(
        pd.concat(margins, ignore_index=True) if margins else None,
        pd.concat(teams, ignore_index=True) if teams else None,
        metadata,
    )
    logger.info(
        "stats-pbp: %d files -> %d games, %d skipped", len(files), len(games), len(problems)
    )
    return LoadResult(games, problems)
