from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nba_forecast.data.events import first_counting_minute, margins_from_events
from nba_forecast.data.schema import (
    ARROW_SCHEMA,
    Game,
    frame_to_games,
    games_to_frame,
    season_from_game_id,
    to_arrow,
)


def test_game_record_validates_and_round_trips() -> None:
    full = Game(
        "0021300001",
        2013,
        "regular",
        dt.date(2013, 10, 29),
        "IND",
        "ORL",
        tuple(range(49)),
        97,
        87,
        4,
    )
    half = Game("0021300002", 2013, "regular", None, None, None, (0,) * 25)
    frame = games_to_frame([full, half])
    assert frame_to_games(frame) == [full, half]
    assert full.complete and not half.complete and full.margin(18) == 18
    assert to_arrow(frame).schema.equals(ARROW_SCHEMA)
    with pytest.raises(ValueError, match="m_0 through at least m_24"):
        Game("x", 2013, "regular", None, None, None, (0,) * 20)
    with pytest.raises(ValueError, match="m_0 must be 0"):
        Game("x", 2013, "regular", None, None, None, (1,) * 25)


@pytest.mark.parametrize(
    ("game_id", "expected"),
    [
        ("0029600001", (1996, "regular")),
        ("0041200101", (2012, "playoff")),
        ("0021400333", (2014, "regular")),
        ("0012000001", (2020, "preseason")),
    ],
)
def test_season_from_game_id(game_id: str, expected: tuple[int, str]) -> None:
    assert season_from_game_id(game_id) == expected


@pytest.mark.parametrize("bad", ["21300001", "00213000011", "abc", "1021300001"])
def test_season_from_bad_game_id(bad: str) -> None:
    with pytest.raises(ValueError, match=r"stats\.nba\.com game id"):
        season_from_game_id(bad)


@pytest.mark.parametrize(
    ("period", "elapsed", "minute"),
    [
        (1, 0, 1),  # 12:00 of Q1 counts toward m_1
        (1, 60, 1),
        (1, 61, 2),
        (1, 720, 12),  # 0:00 of Q1 counts at the quarter end
        (2, 720, 13),  # 12:00 of Q2 (e.g. a technical) does not
        (2, 1440, 24),
        (3, 1440, 25),
        (4, 2880, 48),
    ],
)
def test_first_counting_minute(period: int, elapsed: int, minute: int) -> None:
    assert first_counting_minute(np.array([period]), np.array([elapsed]))[0] == minute


def _reference_margins(events: list[tuple[int, int, int, int]]) -> list[float]:
    """The README's rule, literally: highest score on an event with elapsed < B, or
    elapsed == B and period <= bp."""
    out = []
    for m in range(49):
        boundary = 60 * m
        bp = -(-boundary // 720)
        counted = [
            (h, a)
            for p, e, h, a in events
            if p <= 4 and (e < boundary or (e == boundary and p <= bp))
        ]
        out.append(
            max((h for h, _ in counted), default=0) - max((a for _, a in counted), default=0)
        )
    return out


@st.composite
def games(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    events, home, away = [], 0, 0
    for period in range(1, 5):
        times = sorted(draw(st.lists(st.integers(0, 720), min_size=1, max_size=12)))
        for t in times:
            points = draw(st.sampled_from([1, 2, 3]))
            if draw(st.booleans()):
                home += points
            else:
                away += points
            events.append((period, (period - 1) * 720 + t, home, away))
    if home == away:
        events.append((4, 2880, home + 1, away))
    return events


@settings(max_examples=60, deadline=None)
@given(games())
def test_vectorised_sampling_matches_literal_rule(events: list[tuple[int, int, int, int]]) -> None:
    frame = pd.DataFrame(events, columns=["period", "elapsed_s", "home", "away"])
    frame.insert(0, "game_id", "0021300001")
    frame["row"] = np.arange(len(frame)) + 2
    frame["kind"] = ""
    margins, problems = margins_from_events(frame, check_steps=False)
    assert problems == []
    got = margins.iloc[0][[f"m_{k}" for k in range(49)]].astype(float).tolist()
    assert got == _reference_margins(events)


def test_sampling_accepts_small_integer_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "game_id": ["0021300001"] * 2,
            "period": np.array([1, 2], dtype="int8"),
            "elapsed_s": np.array([700, 1440], dtype="int16"),
            "home": np.array([2, 2], dtype="int16"),
            "away": np.array([0, 3], dtype="int16"),
            "row": [2, 3],
            "kind": "",
        }
    )
    margins, _ = margins_from_events(frame, check_steps=False)
    assert margins.loc[0, "m_12"] == 2 and margins.loc[0, "m_24"] == -1
