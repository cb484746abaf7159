"""``forecast_games``: a table of games (margins by minute, teams, date) in, forecasts out,
with the pre-game features training uses, and a specific error for every bad table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nba_forecast import GameTableError, forecast_games, game_features
from nba_forecast.lifecycle.training import train_ensemble, with_features
from nba_forecast.models.baselines import LinearForecaster
from nba_forecast.models.ensemble import HalftimeEnsemble
from nba_forecast.models.inputs import design_matrix


@pytest.fixture(scope="module")
def ensemble(shipped_games: pd.DataFrame) -> HalftimeEnsemble:
    history = shipped_games[shipped_games["season"].between(2010, 2012)]
    model, _ = train_ensemble(history, validation_games=600, calibration_games=600)
    return model


@pytest.fixture(scope="module")
def games(shipped_games: pd.DataFrame) -> pd.DataFrame:
    """Games of 2013-14 as the shipped file has them (every column)."""
    return shipped_games[shipped_games["season"] == 2013].iloc[100:160]


def test_forecasts_equal_the_models_on_the_training_design_matrix(
    ensemble: HalftimeEnsemble, games: pd.DataFrame, shipped_games: pd.DataFrame
) -> None:
    out = forecast_games(ensemble, games)
    assert list(out.index) == list(games.index)
    assert list(out.columns) == [
        "game_id",
        "game_date",
        "home_team",
        "away_team",
        "m_18",
        "team_strength",
        "back_to_back",
        "forecast",
        "lower",
        "upper",
    ]
    # the features as training computes them, from the whole history
    trained = with_features(shipped_games).set_index("game_id").loc[games["game_id"]]
    np.testing.assert_allclose(out["team_strength"], trained["team_strength"])
    np.testing.assert_array_equal(out["back_to_back"], trained["back_to_back"])
    X, _ = design_matrix(trained.reset_index())
    details = ensemble.predict_details(X)
    np.testing.assert_allclose(out["forecast"], details.forecast)
    np.testing.assert_allclose(out["upper"] - out["lower"], details.upper - details.lower)


def test_only_the_columns_it_needs_from_a_csv_and_a_new_season(
    ensemble: HalftimeEnsemble, tmp_path: Path
) -> None:
    """Games after the shipped seasons: strength from the last games known, rest from the
    table's own dates; a level chosen at predict time."""
    margins = {f"m_{k}": [0, 0] for k in range(19)}
    margins["m_18"] = [6, -4]
    table = pd.DataFrame(
        {"game_date": ["2019-11-01", "2019-11-02"], "home_team": ["TOR", "BOS"],
         "away_team": ["NYK", "TOR"], **margins}
    )  # fmt: skip
    path = tmp_path / "games.csv"
    table.to_csv(path, index=False)
    out = forecast_games(ensemble, path, alpha=0.5)
    assert "game_id" not in out.columns
    assert list(out["back_to_back"]) == [0.0, -1.0]  # TOR played the day before
    assert out["team_strength"].iloc[0] > 0  # TOR was strong in 2014-15, NYK weak
    wide = forecast_games(ensemble, table)
    assert ((out["upper"] - out["lower"]) < (wide["upper"] - wide["lower"])).all()
    table["back_to_back"] = [1, 0]
    assert list(forecast_games(ensemble, table)["back_to_back"]) == [1.0, 0.0]


def test_a_forecaster_without_interval_and_a_saved_model_directory(
    ensemble: HalftimeEnsemble, games: pd.DataFrame, tmp_path: Path
) -> None:
    features = game_features(games)
    X, y = design_matrix(features)
    linear = LinearForecaster().fit(X, y)
    out = forecast_games(linear, games)
    assert "lower" not in out.columns
    np.testing.assert_allclose(out["forecast"], linear.predict(X))
    with pytest.raises(ValueError, match="LinearForecaster has no interval"):
        forecast_games(linear, games, alpha=0.1)
    saved = ensemble.save(tmp_path / "model")
    np.testing.assert_allclose(
        forecast_games(str(saved), games)["forecast"], forecast_games(ensemble, games)["forecast"]
    )


def _broken(games: pd.DataFrame, column: str, rows: list[int], value: Any) -> pd.DataFrame:
    bad = games.copy()
    bad[column] = bad[column].astype(object)
    bad.iloc[rows, bad.columns.get_loc(column)] = value
    return bad


@pytest.mark.parametrize(
    ("column", "rows", "value", "message"),
    [
        # failed before: an unknown team was silently an average team
        ("home_team", [2], "XYZ", r"unknown team\(s\) 'XYZ' in row 3 \(0021300103\); known "
         r"teams: ATL, BKN"),
        ("away_team", [4, 7], "tor", r"rows 5 \(0021300105\), 8 \(0021300108\); abbreviations "
         r"are upper case: 'tor' \(did you mean 'TOR'\?\)"),
        ("home_team", [0], None, r"home_team is empty in row 1 \(0021300101\)"),
        ("m_7", [1], "seven", r"m_7 is empty or not a number in row 2 \(0021300102\)"),
        ("m_7", [1], None, r"m_7 is empty or not a number in row 2"),
        ("m_7", [3], 2.5, r"margins must be whole points: fractions in row 4"),
        ("m_0", [0], 3, r"m_0 must be 0 \(tip-off\) in row 1"),
        ("m_18", [5], 80, r"impossible margins in row 6 \(0021300106\): the margin moves from"),
        ("game_date", [6], "yesterday", r"game_date is not a date \(YYYY-MM-DD\) in row 7"),
        ("back_to_back", [0], 2, r"back_to_back must be -1, 0 or 1 in row 1"),
    ],
)  # fmt: skip
def test_bad_tables_name_the_rows(
    ensemble: HalftimeEnsemble,
    games: pd.DataFrame,
    column: str,
    rows: list[int],
    value: Any,
    message: str,
) -> None:
    table = games.assign(back_to_back=0) if column == "back_to_back" else games
    with pytest.raises(GameTableError, match=message):
        forecast_games(ensemble, _broken(table, column, rows, value))


def test_bad_tables_and_files(
    ensemble: HalftimeEnsemble, games: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(GameTableError, match=r"lacks column.*home_team, m_3; it needs game_date"):
        forecast_games(ensemble, games.drop(columns=["m_3", "home_team"]))
    with pytest.raises(GameTableError, match=r"more than once: rows 1 \(0021300101\), 61 \("):
        forecast_games(ensemble, pd.concat([games, games.head(1)]))
    with pytest.raises(GameTableError, match="has no rows"):
        forecast_games(ensemble, games.iloc[:0])
    with pytest.raises(
        GameTableError, match=r"game_date is empty in rows 1 \(0021300101\), .* and 50 more; a date"
    ):
        forecast_games(ensemble, games.assign(game_date=pd.NaT).drop(columns="season"))
    with pytest.raises(GameTableError, match=r"games.xlsx: expected a \.csv, \.csv\.gz"):
        forecast_games(ensemble, tmp_path / "games.xlsx")
    with pytest.raises(GameTableError, match=r"missing.csv: no such file"):
        forecast_games(ensemble, tmp_path / "missing.csv")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(GameTableError, match=r"broken.parquet: not a readable table"):
        forecast_games(ensemble, tmp_path / "broken.parquet")
    with pytest.raises(TypeError, match="must be a pandas DataFrame, got list"):
        game_features([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="LinearForecaster is not fitted"):
        forecast_games(LinearForecaster(), games)
    X, y = design_matrix(game_features(games))
    twenty = LinearForecaster().fit(X[:, :20], y)
    with pytest.raises(ValueError, match="takes 20 input columns; forecast_games builds 19"):
        forecast_games(twenty, games)
    with pytest.raises(ValueError, match="smallest level this interval supports"):
        forecast_games(ensemble, games, alpha=1e-5)


def test_undated_games_with_a_season_are_ordered_as_in_training(
    ensemble: HalftimeEnsemble, shipped_games: pd.DataFrame
) -> None:
    playoffs = shipped_games[shipped_games["game_date"].isna()].head(5)
    out = forecast_games(ensemble, playoffs)
    trained = with_features(shipped_games).set_index("game_id").loc[playoffs["game_id"]]
    np.testing.assert_allclose(out["team_strength"], trained["team_strength"])
