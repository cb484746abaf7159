"""The feed model of basketball: what a live game accepts, when it forecasts, when it logs an
outcome; and the same bounds on /v1/predict margins. Every real shipped game passes."""

from __future__ import annotations

import pytest

from nba_forecast.data.shipped import load_shipped_events, load_shipped_games
from nba_forecast.serving.basketball import check_margin_path
from nba_forecast.serving.feed import score_updates
from nba_forecast.serving.live import LiveGame, UpdateRejected

MARGINS = [0, 2, 2, 4, 1, -1, 0, 3, 5, 5, 7, 6, 8, 10, 9, 9, 11, 12, 10]


def followed(*updates: tuple[int, int, int, int]) -> LiveGame:
    """A game fed (period, seconds left, home, away) updates."""
    game = LiveGame("g")
    for period, remaining, home, away in updates:
        game.add(period, remaining, home, away)
    return game


def test_every_real_first_half_is_accepted_and_forecast_with_its_margins() -> None:
    events = load_shipped_events()
    games = load_shipped_games().set_index("game_id")
    ids = events["game_id"].drop_duplicates().iloc[::40]
    events = events[events["game_id"].isin(ids)]
    for game_id, game_events in events.groupby("game_id"):
        game = LiveGame(str(game_id))
        for update in score_updates(game_events, str(game_id)):
            minutes, seconds = update["clock"].split(":")
            game.add(
                update["period"], int(minutes) * 60 + int(seconds), update["home"], update["away"]
            )
        assert game.forecast_blocked() is None, game_id
        assert game.margins(18)[18] == games.loc[game_id, "m_18"]
        assert game.halftime_margin() == games.loc[game_id, "m_24"]


@pytest.mark.parametrize(
    ("updates", "reason"),
    [
        # a 60-point jump in one minute
        ([(2, 400, 40, 38), (2, 340, 100, 98)], "cannot score 60 points in 60 s"),
        # 300-0 at Q2 5:59 (from the tip-off, 0-0)
        ([(2, 359, 300, 0)], "cannot score 300 points"),
        # two scores at one second that cannot both be true
        ([(1, 300, 20, 18), (1, 300, 19, 20)], "never decreases"),
        # a score that goes down
        ([(1, 300, 20, 18), (1, 200, 19, 18)], "never decreases"),
        # a second, different halftime score after the half closed
        (
            [(1, 700, 2, 0), (2, 0, 50, 48), (3, 720, 50, 48), (3, 720, 52, 48)],
            "first half is over",
        ),
        # Q3 12:00 below the Q2 0:00 score: no time passes between them
        ([(1, 700, 2, 0), (2, 0, 50, 48), (3, 720, 49, 48)], "never decreases"),
    ],
)
def test_impossible_updates_are_refused_with_the_reason(
    updates: list[tuple[int, int, int, int]], reason: str
) -> None:
    game = followed(*updates[:-1])
    before = list(game.points)
    with pytest.raises(UpdateRejected, match=reason):
        game.add(*updates[-1])
    assert game.points == before  # a refused update changes nothing


def test_a_resent_update_is_a_duplicate_not_an_error() -> None:
    game = followed((1, 700, 2, 0))
    assert game.add(1, 700, 2, 0) is False


def test_free_throws_at_the_buzzer_then_the_third_quarter_close_the_half() -> None:
    game = followed((1, 700, 2, 0), (2, 359, 40, 38), (2, 0, 50, 48), (2, 0, 51, 48))
    assert game.halftime_score is None  # the half closes with the third period
    game.add(3, 720, 51, 48)
    assert game.halftime_score == (51, 48) and game.halftime_margin() == 3.0


@pytest.mark.parametrize(
    ("updates", "reason"),
    [
        ([(2, 300, 40, 38)], "after 6:00 of Q2"),  # first seen after 6:00 Q2
        ([(2, 0, 50, 48)], "after 6:00 of Q2"),  # first seen at Q2 0:00
        ([(3, 700, 52, 50)], "after 6:00 of Q2"),  # first seen in Q3
        ([(1, 300, 2, 0), (2, 300, 40, 38)], "first update at game second 420"),
        ([(1, 390, 15, 3), (2, 300, 40, 38)], "the feed missed the plays before it"),
        ([(1, 700, 2, 0), (1, 100, 25, 22), (2, 300, 40, 38)], "no updates between"),
    ],
)
def test_a_game_not_followed_from_its_start_gets_no_forecast_and_says_why(
    updates: list[tuple[int, int, int, int]], reason: str
) -> None:
    game = followed(*updates)
    assert game.elapsed_s > 18 * 60
    blocked = game.forecast_blocked()
    assert blocked is not None and reason in blocked


def test_an_outcome_needs_a_logged_forecast() -> None:
    game = followed((3, 600, 52, 50))
    assert not game.outcome_due
    game.close_half_without_outcome()
    assert game.note is not None and "no forecast was logged" in game.note


def test_a_game_round_trips_through_json() -> None:
    game = followed((1, 700, 2, 0), (2, 359, 40, 38))
    game.forecast, game.scored = {"forecast": 1.5}, [("v1", 1.5, 0.9)]
    assert LiveGame.from_json(game.to_json()) == game


def test_a_game_saved_before_interval_scales_reads_scale_one() -> None:
    game = followed((1, 700, 2, 0), (2, 359, 40, 38))
    game.scored = [("v1", 1.5, 1.0)]
    old = {**game.to_json(), "scored": [["v1", 1.5]]}
    assert LiveGame.from_json(old).scored == [("v1", 1.5, 1.0)]


@pytest.mark.parametrize(
    ("margins", "reason"),
    [
        ([i * 80 // 18 for i in range(19)], "is possible"),  # a ramp to +80
        ([*MARGINS[:18], 10.5], "whole number"),
        ([*MARGINS[:18], "5"], "whole number"),
        ([*MARGINS[:18], True], "whole number"),
        ([*MARGINS[:18], float("nan")], "whole number"),
        ([*MARGINS[:18], float("inf")], "whole number"),
        ([3, *MARGINS[1:]], "tip-off"),
        ([*MARGINS[:17], 12, 40], "is possible"),
    ],
)
def test_margin_paths_follow_the_same_bounds(margins: list, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_margin_path(margins)


def test_every_real_margin_path_passes() -> None:
    games = load_shipped_games()
    for row in games[[f"m_{i}" for i in range(19)]].to_numpy()[::7]:
        check_margin_path([int(v) for v in row])


def test_the_path_to_6_00_q2_closes_with_the_forecast() -> None:
    game = followed((1, 700, 2, 0), (1, 100, 20, 18), (2, 420, 30, 28), (2, 350, 38, 28))
    assert game.forecast_due
    game.forecast = {"forecast": 9.0}
    with pytest.raises(UpdateRejected, match="arrived too late"):
        game.add(2, 370, 38, 30)  # 5:50 < 6:10: a late update before the forecast moment
    game.add(2, 300, 40, 30)  # after 6:00: fine


def test_an_early_third_quarter_update_leaves_room_for_a_late_second_quarter_one() -> None:
    game = followed((1, 700, 2, 0), (2, 300, 50, 50), (3, 690, 59, 55))
    assert not game.half_closed  # 30 s into Q3: a Q2 update may still be on its way
    game.add(2, 3, 57, 54)  # the last Q2 basket, late
    game.add(3, 600, 61, 55)  # two minutes into Q3: the half is over
    assert game.half_closed and game.halftime_margin() == 3.0
