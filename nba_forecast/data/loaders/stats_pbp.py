"""stats.nba.com play-by-play (PlayByPlayV2 CSV) -> minute margins.

A scoring event is a row with ``EVENTMSGTYPE`` 1 (made field goal) or 3 (free throw) and a
non-empty ``SCORE`` (``"AWAY - HOME"``). Other rows are ignored even when they carry a score:
start/end-of-period rows sometimes hold stale ones. Files hold one game each (as in the
public archives) or several; a directory of files can be loaded in one call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from nba_forecast.data.errors import DataError, LoadResult, OnError, collect, one_per_game
from nba_forecast.data.events import MAX_PERIOD, MAX_POINTS, elapsed_seconds, margins_from_events
from nba_forecast.data.loaders.clock import parse_clock
from nba_forecast.data.loaders.metadata import attach_metadata
from nba_forecast.data.loaders.tables import (
    LINE,
    RowCheck,
    damaged_row_errors,
    drop_reported,
    first_row_errors,
    game_frames,
    game_id_check,
    normalize_game_ids,
    shown,
    without_cyclic_gc,
)
from nba_forecast.data.schema import TEAM_PATTERN

logger = logging.getLogger(__name__)

REQUIRED = ["GAME_ID", "PERIOD", "PCTIMESTRING", "SCORE", "EVENTMSGTYPE"]
FIELD_GOAL, FREE_THROW, END_OF_PERIOD = "1", "3", "13"
SCORE_PATTERN = r" *([0-9]+) *- *([0-9]+) *"  # ASCII digits only
DESCRIPTIONS = ["HOMEDESCRIPTION", "NEUTRALDESCRIPTION", "VISITORDESCRIPTION"]
MAX_ROWS_PER_GAME = 5_000  # a game has 400-700 rows


def _score(text: pd.Series) -> pd.DataFrame:
    """``AWAY - HOME`` strings as numbers (NaN where unparseable; long digit runs stay
    finite as floats and fail the range check)."""
    parts = text.astype("string").str.extract(rf"^{SCORE_PATTERN}$")
    digits = parts.apply(lambda column: column.str.replace(r"^0+(?=[0-9])", "", regex=True))
    return digits.apply(lambda column: column.str.slice(0, 6)).astype("Float64").astype(float)


def _row_checks(frame: pd.DataFrame, game_id: pd.Series) -> tuple[list[RowCheck], pd.Series]:
    """Checks on single rows (the game id and period on every row, score and clock on scoring
    rows) and the scoring-row mask."""
    event_type = frame["EVENTMSGTYPE"].astype("string").str.strip()
    scoring = event_type.isin([FIELD_GOAL, FREE_THROW]).fillna(False) & frame["SCORE"].notna()
    period = pd.to_numeric(frame["PERIOD"], errors="coerce").astype(float)
    score = _score(frame["SCORE"])
    remaining = parse_clock(frame["PCTIMESTRING"])
    score_text = shown(frame["SCORE"])
    # in file order a game's periods never go back: a game's rows twice in a row
    same_game = game_id.eq(game_id.shift()).to_numpy()
    goes_back = same_game & (period.diff() < 0).to_numpy()
    checks: list[RowCheck] = [
        (game_id.isna(), "missing_game_id", "empty GAME_ID", "a game id"),
        game_id_check(game_id, stats_only=True),
        (
            pd.Series(goes_back, index=frame.index),
            "duplicate_game_id",
            "the periods go back to " + shown(frame["PERIOD"]) + " on this row",
            "each game once: its periods in order",
        ),
        (
            period.isna() | (period != period.round()),
            "bad_period",
            "unparseable PERIOD " + shown(frame["PERIOD"]),
            "an integer period, 1-4 or 5+ for overtime",
        ),
        (
            (period < 1) | (period > MAX_PERIOD),
            "period_out_of_range",
            "period out of range",
            f"a period from 1 to {MAX_PERIOD}",
        ),
        (
            scoring & score[0].isna(),
            "bad_score_string",
            "unparseable SCORE " + score_text,
            "'AWAY - HOME', e.g. '12 - 10'",
        ),
        (
            scoring & ((score[0] > MAX_POINTS) | (score[1] > MAX_POINTS)),
            "score_out_of_range",
            "SCORE " + score_text + " out of range",
            f"from 0 to {MAX_POINTS} points per team",
        ),
        (
            scoring & remaining.isna(),
            "unparseable_clock",
            "unparseable PCTIMESTRING " + shown(frame["PCTIMESTRING"]),
            "time remaining as mm:ss, e.g. '11:39'",
        ),
    ]
    return checks, scoring


def _kinds(rows: pd.DataFrame, event_type: pd.Series) -> np.ndarray:
    """``ft``, or for a made shot ``fg3`` / ``fg2`` by whether its description says "3PT"
    (``fg`` where the file has no descriptions), then ``h``/``a`` where only the home or
    visitor description is filled (the side that scored)."""
    described = [c for c in DESCRIPTIONS if c in rows.columns]
    if not described:
        return np.where(event_type == FREE_THROW, "ft", "fg")
    home = rows["HOMEDESCRIPTION"].notna().to_numpy() if "HOMEDESCRIPTION" in rows else None
    away = rows["VISITORDESCRIPTION"].notna().to_numpy() if "VISITORDESCRIPTION" in rows else None
    side = np.full(len(rows), "")
    if home is not None and away is not None:
        side = np.where(home & ~away, "h", np.where(away & ~home, "a", ""))
    three = np.zeros(len(rows), dtype=bool)
    for column in described:
        three |= (
            rows[column]
            .astype("string")
            .str.contains("3PT", regex=False)
            .fillna(False)
            .to_numpy(bool)
        )
    kind = np.where(event_type == FREE_THROW, "ft", np.where(three, "fg3", "fg2"))
    return np.char.add(kind.astype(str), side.astype(str))


def _scoring_events(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[DataError]]:
    """Scoring rows as an events frame, plus row-level errors (one per game)."""
    game_id = normalize_game_ids(frame["GAME_ID"])
    checks, scoring = _row_checks(frame, game_id)
    errors = damaged_row_errors(frame, game_id, source)
    damaged = {e.game_id for e in errors}
    found = first_row_errors(game_id, frame[LINE], checks, source)
    errors += [e for e in found if e.game_id not in damaged]
    rows = frame[scoring & ~game_id.isin({e.game_id for e in errors}) & game_id.notna()]
    score = _score(rows["SCORE"])
    period = pd.to_numeric(rows["PERIOD"]).astype(np.int64).to_numpy()
    remaining = parse_clock(rows["PCTIMESTRING"]).to_numpy().astype(np.int64)
    kind = rows["EVENTMSGTYPE"].astype("string").str.strip()
    events = pd.DataFrame(
        {
            "game_id": game_id[rows.index].astype(str).to_numpy(),
            "period": period,
            "elapsed_s": elapsed_seconds(np.clip(period, 1, None), remaining),
            "home": score[1].astype(np.int64).to_numpy(),
            "away": score[0].astype(np.int64).to_numpy(),
            "row": rows[LINE].to_numpy(),
            "kind": _kinds(rows, kind),
        }
    )
    return events, errors


def _clock_text(seconds: float) -> str:
    return "?" if np.isnan(seconds) else f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _completeness_errors(frame: pd.DataFrame, margins: pd.DataFrame) -> list[DataError]:
    """A game is whole when it has at least four periods, its last period is closed by an
    end-of-period row (EVENTMSGTYPE 13 at 0:00) and that row's score, where it has one, is the
    last scoring row's. Earlier periods are closed by the rows of the next one, so the clock
    reached 0:00 of Q2 before m_24 was taken. A file cut short fails here."""
    rows = frame[normalize_game_ids(frame["GAME_ID"]).isin(margins["game_id"])]
    if rows.empty:
        return []
    game_id = normalize_game_ids(rows["GAME_ID"])
    period = pd.to_numeric(rows["PERIOD"]).astype(np.int64)
    clock = parse_clock(rows["PCTIMESTRING"])
    last_period = period.groupby(game_id).transform("max")
    is_end = (rows["EVENTMSGTYPE"].astype("string").str.strip() == END_OF_PERIOD).fillna(False)
    closing = is_end & (period == last_period) & (clock == 0)
    finals = margins.set_index("game_id")
    errors = []
    for game, game_rows in rows.groupby(game_id, sort=False):
        last = int(last_period[game_rows.index[0]])
        end_rows = game_rows[closing[game_rows.index].to_numpy()]
        tail = game_rows.iloc[-1]
        where = f"period {last}, {_clock_text(clock[game_rows.index[-1]])} left"
        expected = (
            "a whole game: periods 1-4 (and any overtime), the last closed by its "
            "end-of-period row (EVENTMSGTYPE 13 at 0:00)"
        )
        if end_rows.empty or last < 4:
            problem = (
                f"the play-by-play stops in {where} without the end of the period"
                if end_rows.empty
                else f"the play-by-play ends after period {last}"
            )
            errors.append(
                DataError(
                    "incomplete_game",
                    problem,
                    game_id=str(game),
                    row=int(tail[LINE]),
                    expected=expected,
                )
            )
            continue
        shown = _score(end_rows["SCORE"].iloc[[-1]])
        away, home = shown.iloc[0, 0], shown.iloc[0, 1]
        final = finals.loc[game]
        if not np.isnan(away) and (away, home) != (final["final_away"], final["final_home"]):
            errors.append(
                DataError(
                    "final_score_mismatch",
                    f"the end-of-game row shows {end_rows['SCORE'].iloc[-1]!s:.40} (away - "
                    f"home), the scoring rows end at {final['final_away']} - "
                    f"{final['final_home']}",
                    game_id=str(game),
                    row=int(end_rows[LINE].iloc[-1]),
                    expected="the last scoring row's score on the end-of-game row "
                    "(scoring rows missing?)",
                )
            )
    return errors


def _period_end_errors(frame: pd.DataFrame, events: pd.DataFrame) -> list[DataError]:
    """Each end-of-period row with a score (EVENTMSGTYPE 13 at 0:00, not the game's last)
    must show the score of the scoring rows up to it: a scoring row missing, added or moved
    across a period's end changes the margins and shows here."""
    event_type = frame["EVENTMSGTYPE"].astype("string").str.strip()
    ends = frame[(event_type == END_OF_PERIOD).fillna(False) & frame["SCORE"].notna()]
    ends = ends[(parse_clock(ends["PCTIMESTRING"]) == 0).to_numpy()]
    if ends.empty or events.empty:
        return []
    shown = _score(ends["SCORE"])
    ends = ends.assign(
        game_id=normalize_game_ids(ends["GAME_ID"]).astype(str),
        period=pd.to_numeric(ends["PERIOD"]).astype(np.int64),
        shown_away=shown[0].to_numpy(),
        shown_home=shown[1].to_numpy(),
    )
    ends = ends[ends["game_id"].isin(events["game_id"]) & ends["shown_away"].notna()]
    by_period = events.groupby(["game_id", "period"])[["home", "away"]].max().reset_index()
    errors = []
    for end, line in zip(ends.itertuples(index=False), ends[LINE], strict=True):
        before = by_period[
            (by_period["game_id"] == end.game_id) & (by_period["period"] <= end.period)
        ]
        home = int(before["home"].max()) if len(before) else 0
        away = int(before["away"].max()) if len(before) else 0
        if (end.shown_away, end.shown_home) != (away, home):
            errors.append(
                DataError(
                    "period_score_mismatch",
                    f"the end of period {end.period} shows {end.SCORE!s:.40} (away - home), the "
                    f"scoring rows reach {away} - {home}",
                    game_id=end.game_id,
                    row=int(line),
                    expected="the scoring rows' score on each end-of-period row (a scoring "
                    "row missing, duplicated or with the wrong clock?)",
                )
            )
    return errors


def _games_without_scoring(
    frame: pd.DataFrame, margins: pd.DataFrame, errors: list[DataError], source: str
) -> list[DataError]:
    """Games with rows but not one scoring row (a file cut in the first minutes): no game
    leaves without a margin row or an error."""
    game_id = normalize_game_ids(frame["GAME_ID"])
    accounted = set(margins["game_id"]) | {e.game_id for e in errors}
    silent = game_id.notna() & ~game_id.isin(accounted)
    last_rows = frame[silent].groupby(game_id[silent], sort=False)[LINE].last()
    return [
        DataError(
            "incomplete_game",
            "the play-by-play has no scoring row",
            source=source,
            game_id=str(game),
            row=int(line),
            expected="a whole game: periods 1-4 (and any overtime), the last closed by its "
            "end-of-period row (EVENTMSGTYPE 13 at 0:00)",
        )
        for game, line in last_rows.items()
    ]


def _teams(frame: pd.DataFrame) -> pd.DataFrame:
    """Home/away abbreviations where the file has PLAYER1_TEAM_ABBREVIATION (most common team
    on rows described from the home, respectively visitor, side)."""
    columns = ["game_id", "home_team", "away_team"]
    if "PLAYER1_TEAM_ABBREVIATION" not in frame.columns:
        return pd.DataFrame(columns=columns)
    out = []
    for game_id, rows in frame.groupby(normalize_game_ids(frame["GAME_ID"])):
        team = rows["PLAYER1_TEAM_ABBREVIATION"]
        sides = []
        for side in ("HOMEDESCRIPTION", "VISITORDESCRIPTION"):
            common = team[rows[side].notna()].mode() if side in rows else None
            sides.append(common.iloc[0] if common is not None and len(common) else None)
        out.append([game_id, *sides])
    return pd.DataFrame(out, columns=columns)


def _team_errors(teams: pd.DataFrame, frame: pd.DataFrame) -> list[DataError]:
    """Games whose most common team abbreviation is not one."""
    errors = []
    for row in teams.itertuples(index=False):
        for team in (row.home_team, row.away_team):
            if team is not None and not pd.isna(team) and not re.fullmatch(TEAM_PATTERN, team):
                errors.append(
                    DataError(
                        "bad_team",
                        f"PLAYER1_TEAM_ABBREVIATION {team[:40]!r}",
                        game_id=str(row.game_id),
                        expected="a team abbreviation of 2-8 letters or digits, e.g. BOS",
                    )
                )
                break
    return errors


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.name.lower().endswith((".csv", ".csv.gz")) and p.is_file()  # no FIFOs
        )
        if not files:
            raise DataError("no_input_files", "no .csv or .csv.gz files", source=str(path))
        return files
    return [path]


def _chunk_games(
    frame: pd.DataFrame, source: str
) -> tuple[pd.DataFrame, pd.DataFrame, list[DataError]]:
    """The whole, valid games of a chunk of rows (margins, teams) and the others' problems."""
    events, errors = _scoring_events(frame, source)
    margins, event_errors = margins_from_events(events, check_steps=True, on_error="skip")
    errors += [e.with_source(source) for e in event_errors]
    errors += [e.with_source(source) for e in _completeness_errors(frame, margins)]
    errors += [e.with_source(source) for e in _period_end_errors(frame, events)]
    teams = _teams(frame)
    errors += [e.with_source(source) for e in _team_errors(teams, frame)]
    errors += _games_without_scoring(frame, margins, errors, source)
    bad = {e.game_id for e in errors}
    return margins[~margins["game_id"].isin(bad)], teams, errors


def _load_file(
    file: Path,
    seen: dict[str, str],
    metadata: pd.DataFrame | None,
    problems: list[DataError],
    on_error: OnError,
) -> list[pd.DataFrame]:
    """The file's whole, valid games not loaded from an earlier file (recorded in ``seen``:
    game id -> file); the others' problems collected. A file that cannot be read is one
    problem: in a directory, the other files go on."""
    source = str(file)
    try:
        _, grouping, frames = game_frames(file, REQUIRED, "GAME_ID", MAX_ROWS_PER_GAME)
    except DataError as file_error:
        collect(problems, file_error, on_error)
        return []
    parts: list[pd.DataFrame] = []
    reported = 0
    for frame in frames:
        for problem in grouping.problems[reported:]:
            collect(problems, problem, on_error)
        reported = len(grouping.problems)
        margins, teams, errors = _chunk_games(frame, source)
        for error in errors:
            collect(problems, error, on_error)
        for game_id in margins["game_id"][margins["game_id"].isin(seen)]:
            collect(
                problems,
                DataError(
                    "duplicate_game_id",
                    f"game already loaded from {seen[game_id]}",
                    source=source,
                    game_id=game_id,
                    expected="each game id once",
                ),
                on_error,
            )
        margins = margins[~margins["game_id"].isin(seen)]
        games, unknown = attach_metadata(margins, teams, metadata)
        for error in unknown:
            collect(problems, error.with_source(source), on_error)
        parts.append(games)
    for problem in grouping.problems[reported:]:
        collect(problems, problem, on_error)
    games = drop_reported(parts, [p for p in problems if p.source == source])
    seen.update(dict.fromkeys(games["game_id"], source))
    return [games]


@without_cyclic_gc
def load_stats_pbp(
    paths: Path | Iterable[Path],
    *,
    metadata: pd.DataFrame | None = None,
    on_error: OnError = "raise",
) -> LoadResult:
    """Load stats.nba.com play-by-play files (or directories of them) into a game table.

    ``metadata`` (columns ``game_id, game_date, home_team, away_team``) fills what the
    play-by-play lacks; season and season type come from the game id. Only whole games
    are kept: see ``_completeness_errors``.
    """
    files = [f for p in ([paths] if isinstance(paths, Path) else paths) for f in _files(p)]
    problems: list[DataError] = []
    parts: list[pd.DataFrame] = []
    seen: dict[str, str] = {}
    for file in files:
        parts += _load_file(file, seen, metadata, problems, on_error)
    games = drop_reported(parts, [])
    logger.info(
        "stats-pbp: %d files -> %d games, %d skipped", len(files), len(games), len(problems)
    )
    return LoadResult(games, one_per_game(problems))
