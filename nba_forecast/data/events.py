"""Scoring events -> minute margins: the sampling rule and the event-level checks.

Both play-by-play loaders turn their rows into one *events* frame and call
``margins_from_events``. The rule reproduces ``shared/data/nba_margins`` exactly:

* game time: ``elapsed = (period-1)*720 + (720 - clock)`` in periods 1-4,
  ``2880 + (period-5)*300 + (300 - clock)`` in overtime;
* minute ``m`` has boundary ``B = 60*m``; ``bp = ceil(B/720)`` is the period that ends at or
  contains ``B``. A score counts for ``m_m`` if its event has ``elapsed < B``, or
  ``elapsed == B`` and ``period <= bp`` (an event at 0:00 of the quarter that is ending counts,
  one stamped 12:00 of the next quarter does not). Only regulation events count; ``m_48``
  excludes overtime.

Events frame columns: ``game_id, period, elapsed_s, home, away, row, kind`` where ``row`` is
the 1-based line of the source file and ``kind`` is ``ft`` (1 point), ``fg2`` / ``fg3`` (a made
shot whose description says its value: "3PT" or not), ``fg`` (2 or 3) (stats.nba.com event
types, enables the points-per-event check) or ``""`` (unknown).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from nba_forecast.data.errors import DataError, OnError, collect
from nba_forecast.data.schema import MARGIN_COLUMNS, N_MINUTES

logger = logging.getLogger(__name__)

QUARTER_S = 720
OVERTIME_S = 300
REGULATION_S = 4 * QUARTER_S
MAX_PERIOD = 14  # 10 overtimes; more means a corrupt period column
MAX_POINTS = 300  # per team and game (the record is 186); more is a corrupt score
MAX_SCORELESS_S = 360  # > 6:00 without points in a regulation period: a broken clock
EVENT_COLUMNS = ["game_id", "period", "elapsed_s", "home", "away", "row", "kind"]
# (bad game mask, code, problem of game g, expected) of a whole-game check
GameRule = tuple[np.ndarray, str, Callable[[np.integer], str], str]


def period_length(period: np.ndarray) -> np.ndarray:
    return np.where(period <= 4, QUARTER_S, OVERTIME_S)


def period_start(period: np.ndarray) -> np.ndarray:
    regulation = (period - 1) * QUARTER_S
    overtime = REGULATION_S + (period - 5) * OVERTIME_S
    return np.where(period <= 4, regulation, overtime)


def elapsed_seconds(period: np.ndarray, remaining_s: np.ndarray) -> np.ndarray:
    """Game seconds elapsed at an event from its period and the clock's time remaining."""
    return period_start(period) + period_length(period) - remaining_s


def first_counting_minute(period: np.ndarray, elapsed_s: np.ndarray) -> np.ndarray:
    """The first minute ``m`` whose margin includes the event (the sampling rule above)."""
    on_boundary = elapsed_s % 60 == 0
    minute = elapsed_s // 60
    boundary_period = -(-minute * 60 // QUARTER_S)  # ceil(B / 720), 0 for m = 0
    counts_at_boundary = on_boundary & (period <= boundary_period)
    return np.where(counts_at_boundary, minute, minute + 1)


def _score_change(frame: pd.DataFrame, seq: int) -> str:
    """'home-away 104-110 -> 106-110 (period 5, 0:27 left)' for the event at ``seq``."""
    now = frame.iloc[seq]
    before = (
        frame.iloc[seq - 1]
        if seq > 0 and frame.iloc[seq - 1]["game_id"] == now["game_id"]
        else None
    )
    was = f"{before['home']}-{before['away']}" if before is not None else "0-0"
    period = int(now["period"])
    left = int(period_start(np.array([period]))[0] + period_length(np.array([period]))[0])
    left -= int(now["elapsed_s"])
    return (
        f"home-away {was} -> {now['home']}-{now['away']} "
        f"(period {period}, {left // 60}:{left % 60:02d} left)"
    )


def _first_problem_per_game(
    frame: pd.DataFrame,
    bad: np.ndarray,
    code: str,
    problem: str,
    expected: str,
    detail: bool = False,
) -> list[tuple[str, int, DataError]]:
    """One DataError per game at that game's first bad row (in sorted order)."""
    hits = frame.loc[bad, ["game_id", "row", "seq"]].drop_duplicates("game_id")
    found = []
    for r in hits.itertuples(index=False):
        text = f"{problem}: {_score_change(frame, int(r.seq))}" if detail else problem
        error = DataError(code, text, game_id=str(r.game_id), row=int(r.row), expected=expected)
        found.append((str(r.game_id), int(r.seq), error))
    return found


def _check_rows(frame: pd.DataFrame) -> list[tuple[str, int, DataError]]:
    """Checks on single rows: period range and clock range."""
    found = []
    period = frame["period"].to_numpy()
    elapsed = frame["elapsed_s"].to_numpy()
    bad_period = (period < 1) | (period > MAX_PERIOD)
    found += _first_problem_per_game(
        frame,
        bad_period,
        "period_out_of_range",
        "period out of range",
        f"a period from 1 to {MAX_PERIOD}",
    )
    safe = np.clip(period, 1, MAX_PERIOD)
    start = period_start(safe)
    bad_clock = ~bad_period & ((elapsed < start) | (elapsed > start + period_length(safe)))
    found += _first_problem_per_game(
        frame,
        bad_clock,
        "clock_out_of_range",
        "game clock outside its period",
        "a clock from 0:00 to 12:00 (5:00 in overtime)",
    )
    return found


def _kind_parts(kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A kind's type (``ft``, ``fg``, ``fg2``, ``fg3``, ``""``) and side (``h``ome, ``a``way or
    ``""``): the side suffix says whose description holds the play."""
    text = kind.astype(str)
    side = np.where(
        np.char.endswith(text, "h"), "h", np.where(np.char.endswith(text, "a"), "a", "")
    )
    return np.char.rstrip(text, "ha"), side


def _plausible_step(kind: np.ndarray, dh: np.ndarray, da: np.ndarray) -> np.ndarray:
    """No points, or 1 (free throw) / 2 or 3 (field goal, as its description says) points to
    one team, the team whose description holds the play: a free throw missing before a two
    shows as a three without "3PT", a score written the wrong way round as the other side."""
    kind, side = _kind_parts(kind)
    points = dh + da
    one_team = ((dh == 0) | (da == 0)) & ~((side == "h") & (da > 0)) & ~((side == "a") & (dh > 0))
    allowed = np.select(
        [kind == "ft", kind == "fg2", kind == "fg3"],
        [points == 1, points == 2, points == 3],
        (points == 2) | (points == 3),
    )
    return (points == 0) | (one_team & allowed)


def _check_monotonic(
    frame: pd.DataFrame, same_game: np.ndarray, dh: np.ndarray, da: np.ndarray
) -> list[tuple[str, int, DataError]]:
    """No team's score goes below 0 or below a score it showed earlier in the game."""
    first = frame["home"].to_numpy() < 0
    first |= frame["away"].to_numpy() < 0
    bad = np.concatenate([[False], same_game & ((dh < 0) | (da < 0))]) | first
    return _first_problem_per_game(
        frame,
        bad,
        "non_monotonic_score",
        "a team's score goes down",
        "each team's score never lower than a score it showed earlier",
        detail=True,
    )


def _check_score_steps(
    frame: pd.DataFrame, same_game: np.ndarray, dh: np.ndarray, da: np.ndarray
) -> list[tuple[str, int, DataError]]:
    """Each scoring event adds the points its event type allows (needs stats.nba.com kinds)."""
    kind = frame["kind"].to_numpy()
    bad_step = same_game & (dh >= 0) & (da >= 0) & ~_plausible_step(kind[1:], dh, da)
    # the first event of a game is measured from 0-0
    starts = ~np.concatenate([[False], same_game])
    ok0 = _plausible_step(kind, frame["home"].to_numpy(), frame["away"].to_numpy())
    bad = np.concatenate([[False], bad_step]) | (starts & ~ok0)
    return _first_problem_per_game(
        frame,
        bad,
        "score_step_inconsistent",
        "a scoring event does not add 1 (free throw) or 2-3 (field goal) points to one team",
        "no missing, duplicated or mistimed scoring rows",
        detail=True,
    )


def _check_shared_seconds(
    frame: pd.DataFrame, same_game: np.ndarray
) -> list[tuple[str, int, DataError]]:
    """Two or more pairs of made field goals in the same clock second: a stuck clock."""
    fg = np.isin(_kind_parts(frame["kind"].to_numpy())[0], ["fg", "fg2", "fg3"])
    elapsed = frame["elapsed_s"].to_numpy()
    pair = same_game & fg[1:] & fg[:-1] & (elapsed[1:] == elapsed[:-1])
    pair_rows = np.concatenate([[False], pair]) if len(frame) else np.zeros(0, dtype=bool)
    per_game = pd.Series(pair_rows).groupby(frame["game_id"].to_numpy()).transform("sum")
    bad = pair_rows & (per_game.to_numpy() >= 2)
    return _first_problem_per_game(
        frame,
        bad,
        "clock_anomaly",
        "two or more pairs of consecutive made field goals share one clock second",
        "a working game clock",
    )


def _check_sequence(frame: pd.DataFrame, check_steps: bool) -> list[tuple[str, int, DataError]]:
    """Checks on consecutive events of a game (frame sorted by game, time, total points)."""
    same_game = frame["game_id"].to_numpy()[1:] == frame["game_id"].to_numpy()[:-1]
    dh = np.diff(frame["home"].to_numpy())
    da = np.diff(frame["away"].to_numpy())
    found = _check_monotonic(frame, same_game, dh, da)
    if check_steps:
        found += _check_score_steps(frame, same_game, dh, da)
        found += _check_shared_seconds(frame, same_game)
    return found


def _check_scoreless_gaps(frame: pd.DataFrame) -> list[tuple[str, int, DataError]]:
    """A regulation period with more than 6:00 without points: a broken clock."""
    scoring = frame[(frame["period"] <= 4) & (frame["home"] + frame["away"] > 0)]
    scoring = scoring[
        scoring["home"].diff().ne(0)
        | scoring["away"].diff().ne(0)
        | scoring["game_id"].ne(scoring["game_id"].shift())
    ]
    previous = scoring.groupby(["game_id", "period"], sort=False)["elapsed_s"].shift()
    since = previous.fillna(pd.Series(period_start(scoring["period"].to_numpy()), scoring.index))
    bad = np.zeros(len(frame), dtype=bool)
    bad[
        frame.index.get_indexer(scoring.index[(scoring["elapsed_s"] - since) > MAX_SCORELESS_S])
    ] = True
    return _first_problem_per_game(
        frame,
        bad,
        "clock_anomaly",
        "more than 6:00 of a regulation period without points",
        "a working game clock",
    )


def _game_rules(
    frame: pd.DataFrame, summary: pd.DataFrame, codes: np.ndarray, game_ids: pd.Index
) -> list[GameRule]:
    """The whole-game rules, each with the games that break it."""
    period = frame["period"].to_numpy()
    present = np.zeros((len(game_ids), MAX_PERIOD + 1), dtype=bool)
    present[codes, period] = True
    last = np.zeros(len(game_ids), dtype=np.int64)
    np.maximum.at(last, codes, period)
    columns = np.arange(MAX_PERIOD + 1)[None, :]
    gaps = ~present & (columns >= 1) & (columns <= last[:, None])
    by_game = summary.loc[game_ids.astype(str)]
    m_48 = by_game["m_48"].to_numpy(dtype=float, na_value=np.nan)
    tied = (by_game["final_home"] == by_game["final_away"]).to_numpy(dtype=bool, na_value=False)
    return [
        (
            last < 2,
            "ends_before_halftime",
            lambda g: f"the events stop in period {last[g]}",
            "events through the end of the 2nd period at least",
        ),
        (
            gaps.any(axis=1),
            "missing_period",
            lambda g: f"no scoring event in period(s) {np.flatnonzero(gaps[g]).tolist()}",
            "at least one scoring event in every period up to the last",
        ),
        (
            last == 3,
            "incomplete_game",
            lambda g: "the events stop in period 3",
            "events through period 2 (a first half) or through the end of the game",
        ),
        (
            (last > 4) & (m_48 != 0),
            "overtime_inconsistent",
            lambda g: f"overtime played but regulation ended {m_48[g]:+.0f}",
            "a tie at the end of regulation in a game with overtime",
        ),
        (
            (last >= 4) & tied,
            "overtime_inconsistent",
            lambda g: f"the game ends tied after period {last[g]}",
            "a winner: another overtime period follows a tie",
        ),
    ]


def _check_games(frame: pd.DataFrame, summary: pd.DataFrame) -> list[tuple[str, int, DataError]]:
    """Whole-game checks: game reaches halftime, no period without scoring, overtime only
    after a tie. Reported at the game's last row."""
    if frame.empty:
        return []
    codes, game_ids = pd.factorize(frame["game_id"], sort=False)
    rules = _game_rules(frame, summary, codes, game_ids)
    last_row = frame.groupby(codes, sort=True)[["row", "seq"]].last().to_numpy()
    found = []
    for bad, code, describe, expected in rules:
        for g in np.flatnonzero(bad):
            row, seq = (int(v) for v in last_row[g])
            error = DataError(
                code, describe(g), game_id=str(game_ids[g]), row=row, expected=expected
            )
            found.append((str(game_ids[g]), seq, error))
    return found


def _sample(frame: pd.DataFrame) -> pd.DataFrame:
    """Minute margins for valid, sorted events. One row per game."""
    codes, game_ids = pd.factorize(frame["game_id"], sort=False)
    period = frame["period"].to_numpy()
    regulation = period <= 4
    minute = first_counting_minute(period, frame["elapsed_s"].to_numpy())
    home = np.zeros((len(game_ids), N_MINUTES + 1), dtype=np.int32)
    away = np.zeros_like(home)
    np.maximum.at(
        home, (codes[regulation], minute[regulation]), frame["home"].to_numpy()[regulation]
    )
    np.maximum.at(
        away, (codes[regulation], minute[regulation]), frame["away"].to_numpy()[regulation]
    )
    margins = (np.maximum.accumulate(home, axis=1) - np.maximum.accumulate(away, axis=1)).astype(
        np.float64
    )
    last_period = np.zeros(len(game_ids), dtype=np.int64)
    np.maximum.at(last_period, codes, period)
    covered = np.minimum(last_period, 4) * (QUARTER_S // 60)
    margins[np.arange(N_MINUTES + 1)[None, :] > covered[:, None]] = np.nan
    out = pd.DataFrame(margins, columns=MARGIN_COLUMNS)
    out.insert(0, "game_id", game_ids.astype(str))
    final_home = np.zeros(len(game_ids), dtype=np.int64)
    final_away = np.zeros(len(game_ids), dtype=np.int64)
    np.maximum.at(final_home, codes, frame["home"].to_numpy())
    np.maximum.at(final_away, codes, frame["away"].to_numpy())
    complete = last_period >= 4
    out["final_home"] = pd.array(np.where(complete, final_home, -1), dtype="Int64")
    out["final_away"] = pd.array(np.where(complete, final_away, -1), dtype="Int64")
    out["n_periods"] = pd.array(np.where(complete, last_period, -1), dtype="Int64")
    for column in ("final_home", "final_away", "n_periods"):
        out.loc[~complete, column] = pd.NA
    return out.set_index("game_id", drop=False)


def margins_from_events(
    events: pd.DataFrame,
    *,
    check_steps: bool,
    on_error: OnError = "raise",
) -> tuple[pd.DataFrame, list[DataError]]:
    """Validate scoring events and sample them into minute margins.

    Returns a frame with ``game_id, m_0..m_48, final_home, final_away, n_periods`` (margins NaN
    past the last period the events cover) and the problems of skipped games.
    ``check_steps`` adds the stats.nba.com checks that need event types (points per event,
    clock anomalies).
    """
    frame = events.loc[:, EVENT_COLUMNS].copy()
    # small integer dtypes (e.g. int8 periods) would overflow in game-second arithmetic
    for column in ("period", "elapsed_s", "home", "away", "row"):
        frame[column] = frame[column].astype(np.int64)
    frame["seq"] = np.arange(len(frame))
    frame["points"] = frame["home"] + frame["away"]
    frame = frame.sort_values(["game_id", "elapsed_s", "points", "seq"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["seq"] = np.arange(len(frame))

    found = _check_rows(frame)
    found += _check_sequence(frame, check_steps)
    if check_steps:
        found += _check_scoreless_gaps(frame)
    bad_games = {game_id for game_id, _, _ in found}
    clean = frame[~frame["game_id"].isin(bad_games)]
    summary = _sample(clean) if len(clean) else _sample(frame.iloc[:0])
    found += _check_games(clean, summary)

    # one problem per game: the first check that fails (checks run in the source pipeline's
    # order, so a game is dropped for the same reason), reported in file order
    first: dict[str, tuple[int, DataError]] = {}
    for game_id, seq, error in found:
        first.setdefault(game_id, (seq, error))
    problems: list[DataError] = []
    for _, error in sorted(first.values(), key=lambda item: item[0]):
        collect(problems, error, on_error)
    reported = set(first)
    margins = summary[~summary.index.isin(reported)].reset_index(drop=True)
    return margins, problems
