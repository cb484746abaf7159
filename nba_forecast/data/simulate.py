"""A possession-level game simulator, vectorised over games, with drift over time.

Each game alternates possessions between the teams; a possession lasts a random time set by
the pace and ends with 0, 1, 2 or 3 points. The chance to score shifts with the two teams'
strengths, home advantage, and the offense's lead (trailing teams score a little more:
mean reversion). Calibrated on the shipped real games: per-minute margin variance and the
SD of m_24 - m_18 match within a few percent (see tests/unit/test_simulate.py).

A ``DriftSchedule`` moves pace, three-point share and home advantage linearly from the first
to the last simulated game, so lifecycle code can be tested against known drift.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from nba_forecast.data.schema import COLUMNS, MARGIN_COLUMNS, N_MINUTES, conform

logger = logging.getLogger(__name__)

REGULATION_S = 2880.0
OVERTIME_S = 300.0
MAX_OVERTIMES = 10
SEASON_DAYS = 173  # late October to mid April


@dataclass(frozen=True)
class GameModel:
    """Parameters of one league-season; defaults are calibrated on the shipped data."""

    possessions_per_team: float = 91.0  # per 48 minutes
    p_free_throw_trip: float = 0.045  # possession ends with exactly 1 point
    p_two: float = 0.335
    p_three: float = 0.125
    home_advantage: float = 4.5  # points per 48 minutes
    team_strength_sd: float = 5.5  # net points per 48 minutes, between teams
    mean_reversion: float = 0.0035  # scoring-chance shift per point of the offense's lead
    teams: int = 30
    games_per_season: int = 1230

    def __post_init__(self) -> None:
        if not 0 < self.p_free_throw_trip + self.p_two + self.p_three < 1:
            raise ValueError("scoring probabilities must sum to less than 1")
        if self.possessions_per_team <= 0 or self.teams < 2 or self.games_per_season < 1:
            raise ValueError("possessions_per_team, teams and games_per_season must be positive")


@dataclass(frozen=True)
class DriftSchedule:
    """Linear drift from the first to the last game: (start, end) of each quantity.

    ``pace`` and ``three_share`` are multipliers of the model's possessions and three-point
    probability; ``home_advantage`` is in points per 48 minutes (None keeps the model's).
    """

    pace: tuple[float, float] = (1.0, 1.0)
    three_share: tuple[float, float] = (1.0, 1.0)
    home_advantage: tuple[float, float] | None = None

    @classmethod
    def parse(cls, text: str) -> DriftSchedule:
        """From ``"pace=1.0:1.1,three_share=1.0:1.4,home_advantage=3:1"``."""
        values: dict[str, tuple[float, float]] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, span = part.partition("=")
            start, sep, end = span.partition(":")
            if name not in cls.__dataclass_fields__ or not sep:
                raise ValueError(
                    f"bad drift term {part!r}: expected NAME=START:END with NAME one of "
                    f"{', '.join(cls.__dataclass_fields__)}"
                )
            try:
                values[name] = (float(start), float(end))
            except ValueError:
                raise ValueError(
                    f"bad drift term {part!r}: START and END must be numbers"
                ) from None
        schedule = cls(**values)
        for name in ("pace", "three_share"):
            if min(getattr(schedule, name)) <= 0:
                raise ValueError(f"drift {name} multipliers must be positive")
        return schedule

    def at(self, progress: NDArray[np.float64], name: str, default: float) -> NDArray[np.float64]:
        span = getattr(self, name)
        if span is None:
            return np.full_like(progress, default)
        return span[0] + (span[1] - span[0]) * progress


@dataclass
class _Games:
    """Per-game parameters for one vectorised run."""

    mean_possession_s: NDArray[np.float64]
    thresholds: NDArray[np.float64]  # cumulative P(0), P(<=1), P(<=2), one row per game
    edge: NDArray[np.float64]  # home scoring-chance shift per possession (strength + home)
    reversion: float
    rng: np.random.Generator = field(repr=False)


def _play(
    games: _Games,
    seconds: float,
    on_minute: Callable[[NDArray, NDArray, NDArray], None] | None,
    progress: Callable[[float], None] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Play ``seconds`` of game time for every game; points of home and away.

    ``on_minute(mask, minute, margin)`` is called before a possession's points count, for each
    minute boundary the possession's end time has passed.
    """
    n = len(games.mean_possession_s)
    rng = games.rng
    t = np.zeros(n)
    home = np.zeros(n, dtype=np.int64)
    away = np.zeros(n, dtype=np.int64)
    home_ball = rng.random(n) < 0.5
    next_minute = np.ones(n, dtype=np.int64)
    low, high = games.thresholds[:, 0], games.thresholds[:, 1]
    while (t <= seconds).any():
        t = t + games.mean_possession_s * rng.uniform(0.4, 1.6, n)
        margin = home - away
        if on_minute is not None:
            while True:
                due = (next_minute <= N_MINUTES) & (60.0 * next_minute < t)
                if not due.any():
                    break
                on_minute(due, next_minute[due], margin[due])
                next_minute[due] += 1
        offense_lead = np.where(home_ball, margin, -margin)
        shift = np.where(home_ball, games.edge, -games.edge) - games.reversion * offense_lead
        u = rng.random(n)
        # shift moves probability between "no points" and "two points"
        points = np.where(
            u < low - shift / 2,
            0,
            np.where(u < high - shift / 2, 1, np.where(u < games.thresholds[:, 2], 2, 3)),
        )
        points = np.where(t <= seconds, points, 0)
        home += np.where(home_ball, points, 0)
        away += np.where(home_ball, 0, points)
        home_ball = ~home_ball
        if progress is not None:
            progress(min(float(t.min()) / seconds, 1.0))
    return home, away


def _game_parameters(
    model: GameModel, drift: DriftSchedule, n: int, rng: np.random.Generator
) -> tuple[_Games, NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    progress = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(n)
    season_index = np.arange(n) // model.games_per_season
    n_seasons = int(season_index.max()) + 1 if n else 0
    ratings = rng.normal(0.0, model.team_strength_sd, (n_seasons, model.teams))
    home_team = rng.integers(0, model.teams, n)
    away_team = (home_team + rng.integers(1, model.teams, n)) % model.teams
    possessions = model.possessions_per_team * drift.at(progress, "pace", 1.0)
    p_three = model.p_three * drift.at(progress, "three_share", 1.0)
    # more threes replace twos at equal expected points, so only the variance moves
    p_two = np.clip(model.p_two - (p_three - model.p_three) * 1.5, 0.05, None)
    p_zero = 1.0 - model.p_free_throw_trip - p_two - p_three
    if (p_zero <= 0).any():
        raise ValueError("drift pushes the chance of a scoreless possession below 0")
    thresholds = np.stack([p_zero, p_zero + model.p_free_throw_trip, 1.0 - p_three], axis=1)
    home_adv = drift.at(progress, "home_advantage", model.home_advantage)
    net = ratings[season_index, home_team] - ratings[season_index, away_team] + home_adv
    # a shift of d adds d expected points to the home offense and takes d from the away
    # offense, so a net of x points per 48 minutes needs d = x / (2 * possessions)
    edge = net / (2.0 * possessions)
    games = _Games(
        mean_possession_s=REGULATION_S / (2.0 * possessions),
        thresholds=thresholds,
        edge=edge,
        reversion=model.mean_reversion,
        rng=rng,
    )
    return games, season_index, home_team, away_team


def _subset(games: _Games, mask: NDArray[np.bool_]) -> _Games:
    return _Games(
        games.mean_possession_s[mask],
        games.thresholds[mask],
        games.edge[mask],
        games.reversion,
        games.rng,
    )


def _regulation(
    games: _Games, progress: Callable[[float], None] | None
) -> tuple[NDArray[np.int16], NDArray[np.int64], NDArray[np.int64]]:
    """Play regulation: the margin at each minute boundary, and the points of home and away."""
    n_games = len(games.mean_possession_s)
    margins = np.zeros((n_games, N_MINUTES + 1), dtype=np.int16)
    rows = np.arange(n_games)

    def record(mask: NDArray, minute: NDArray, margin: NDArray) -> None:
        margins[rows[mask], minute] = margin

    home, away = _play(games, REGULATION_S, record, progress)
    return margins, home, away


def _overtimes(
    games: _Games, home: NDArray[np.int64], away: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Play overtimes until no game is tied, adding their points to ``home`` and ``away`` in
    place; the number of periods of each game."""
    periods = np.full(len(home), 4, dtype=np.int64)
    for _ in range(MAX_OVERTIMES):
        tied = home == away
        if not tied.any():
            break
        extra_home, extra_away = _play(_subset(games, tied), OVERTIME_S, None)
        home[tied] += extra_home
        away[tied] += extra_away
        periods[tied] += 1
    # a game still tied after 10 overtimes is settled by one point, as no real game gets there
    still_tied = home == away
    home[still_tied] += 1
    return periods


def _game_dates(model: GameModel, season: NDArray[np.int64]) -> pd.Series:
    """Game dates spread evenly over each season, from October 25 on."""
    in_season = np.arange(len(season)) % model.games_per_season
    day = (in_season * SEASON_DAYS) // model.games_per_season
    opening = pd.to_datetime(pd.Series(season).astype(str) + "-10-25")
    return opening + pd.to_timedelta(day, unit="D")


def simulate_games(
    n_games: int,
    *,
    seed: int = 0,
    model: GameModel | None = None,
    drift: DriftSchedule | None = None,
    start_season: int = 2000,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Simulate ``n_games`` games as a game table (schema in ``nba_forecast.data.schema``).

    Games are ordered in time: ``games_per_season`` per season from ``start_season`` on, dated
    across late October to mid April. Ids are ``sim<seed>-<index>``. ``progress`` gets the
    share of regulation time played so far.
    """
    if n_games < 1:
        raise ValueError(f"n_games must be at least 1, got {n_games}")
    model = model or GameModel()
    drift = drift or DriftSchedule()
    rng = np.random.default_rng(seed)
    games, season_index, home_team, away_team = _game_parameters(model, drift, n_games, rng)
    margins, home, away = _regulation(games, progress)
    periods = _overtimes(games, home, away)
    season = start_season + season_index
    frame = pd.DataFrame(margins, columns=MARGIN_COLUMNS)
    frame.insert(0, "game_id", [f"sim{seed}-{i:07d}" for i in range(n_games)])
    frame.insert(1, "season", season)
    frame.insert(2, "season_type", "regular")
    frame.insert(3, "game_date", _game_dates(model, season))
    frame.insert(4, "home_team", [f"T{t + 1:02d}" for t in home_team])
    frame.insert(5, "away_team", [f"T{t + 1:02d}" for t in away_team])
    frame["final_home"] = home
    frame["final_away"] = away
    frame["n_periods"] = periods
    logger.info("simulated %d games (seed %d, %s)", n_games, seed, drift)
    return conform(frame[COLUMNS])


def midseason_shift(
    *,
    history_seasons: int = 8,
    seed: int = 0,
    pace_after: float = 2.0,
    start_season: int = 2000,
) -> pd.DataFrame:
    """History with no drift, then one season whose second half is played at
    ``pace_after`` times the pace: scoring variance jumps mid-season. The last season is
    ``start_season + history_seasons``."""
    model = GameModel()
    history = simulate_games(
        history_seasons * model.games_per_season, seed=seed, start_season=start_season
    )
    season = start_season + history_seasons
    half = model.games_per_season // 2
    first = simulate_games(
        half,
        seed=seed + 1,
        start_season=season,
        model=GameModel(games_per_season=model.games_per_season),
    )
    second = simulate_games(
        model.games_per_season - half,
        seed=seed + 2,
        start_season=season,
        drift=DriftSchedule(pace=(pace_after, pace_after)),
    )
    # the second half continues where the first stopped
    second["game_date"] = second["game_date"] + pd.Timedelta(days=SEASON_DAYS // 2 + 1)
    return pd.concat([history, first, second], ignore_index=True)
