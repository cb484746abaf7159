from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba_forecast.data.pregame import pregame_features
from nba_forecast.data.schema import margin_matrix
from nba_forecast.data.splits import SeasonSplit, split_games
from nba_forecast.evaluation.paired_tests import diebold_mariano
from nba_forecast.models.base import NotFittedError
from nba_forecast.models.baselines import DampedPersistence, Persistence

FORECASTERS = [Persistence, DampedPersistence]


@pytest.fixture(scope="module")
def data(shipped_games: pd.DataFrame) -> dict[str, np.ndarray]:
    m = margin_matrix(shipped_games.sample(4000, random_state=1), 24)
    return {"X": m[:3000, :19], "y": m[:3000, 24], "X_new": m[3000:, :19]}


@pytest.mark.parametrize("cls", FORECASTERS)
def test_forecaster_contract(cls: type, data: dict, tmp_path: Path) -> None:
    model = cls()
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(data["X_new"])
    assert model.fit(data["X"], data["y"]) is model
    forecast = model.predict(data["X_new"])
    assert forecast.shape == (len(data["X_new"]),) and np.isfinite(forecast).all()
    loaded = cls.load(model.save(tmp_path / "model"))
    assert np.array_equal(loaded.predict(data["X_new"]), forecast)


@pytest.mark.parametrize("cls", FORECASTERS)
@pytest.mark.parametrize(
    ("X", "message"),
    [(np.zeros((3, 18)), "shape"), (np.zeros((0, 19)), "empty"), (np.full((3, 19), np.nan), "NaN")],
)
def test_forecaster_bad_input(cls: type, X: np.ndarray, message: str, data: dict) -> None:
    with pytest.raises(ValueError, match=message):
        cls().fit(X, np.zeros(len(X)))
    model = cls().fit(data["X"], data["y"])
    with pytest.raises(ValueError, match=message):
        model.predict(X)


def test_load_rejects_another_model(data: dict, tmp_path: Path) -> None:
    path = Persistence().fit(data["X"], data["y"]).save(tmp_path / "p")
    with pytest.raises(ValueError, match="holds a Persistence"):
        DampedPersistence.load(path)
    with pytest.raises(FileNotFoundError, match=r"params\.json"):
        Persistence.load(tmp_path / "missing")


def test_damped_persistence_learns_mean_reversion(data: dict) -> None:
    model = DampedPersistence().fit(data["X"], data["y"])
    assert 0.85 < model.slope_ < 1.0 and 0 < model.intercept_ < 1.0


def test_pregame_features_never_look_ahead(shipped_games: pd.DataFrame) -> None:
    games = shipped_games[shipped_games["season"].isin([2012, 2013])].reset_index(drop=True)
    before = pregame_features(games)
    cutoff = pd.Timestamp("2013-12-01")
    future = games["game_date"] >= cutoff
    shuffled = games.copy()
    rng = np.random.default_rng(0)
    for column in ("final_home", "final_away", "m_24"):
        values = shuffled.loc[future, column].to_numpy()
        shuffled.loc[future, column] = rng.permutation(values)
    # shuffle the future schedule too: back-to-backs must not leak either
    shuffled.loc[future, "game_date"] = rng.permutation(shuffled.loc[future, "game_date"])
    after = pregame_features(shuffled)
    past = ~future & games["game_date"].notna()
    pd.testing.assert_frame_equal(before[past], after[past])
    assert not before.loc[future, "team_strength"].equals(after.loc[future, "team_strength"])


def test_back_to_back_flags_the_tired_side() -> None:
    rows = [
        ("g1", "2014-01-01", "AAA", "BBB"),
        ("g2", "2014-01-02", "AAA", "CCC"),
        ("g3", "2014-01-02", "DDD", "BBB"),
        ("g4", "2014-01-03", "BBB", "AAA"),
    ]
    games = pd.DataFrame(rows, columns=["game_id", "game_date", "home_team", "away_team"])
    games = games.assign(season=2013, final_home=100, final_away=90, m_24=5)
    games["game_date"] = pd.to_datetime(games["game_date"])
    features = pregame_features(games)
    # g2: home AAA played yesterday; g3: away BBB did; g4: both did
    assert features["back_to_back"].tolist() == [0.0, 1.0, -1.0, 0.0]
    # no history before g1; in g4 home BBB lost both earlier games by 10, AAA won both
    assert features.loc[0, "team_strength"] == 0.0
    assert features.loc[3, "team_strength"] == pytest.approx(-20.0)


def test_team_strength_beats_persistence_on_test_seasons(shipped_games: pd.DataFrame) -> None:
    games = pd.concat([shipped_games, pregame_features(shipped_games)], axis=1)
    splits = split_games(
        games, SeasonSplit(validation=[2011], calibration=[2012], test=[2013, 2014])
    )

    def design(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = margin_matrix(frame, 24)
        design = [m[:, 18], frame["team_strength"], frame["back_to_back"], np.ones(len(frame))]
        return np.column_stack(design), m[:, 24], m[:, 18]

    A, y, _ = design(splits["train"])
    weights = np.linalg.lstsq(A, y, rcond=None)[0]
    B, y_test, m18 = design(splits["test"])
    result = diebold_mariano(B @ weights - y_test, m18 - y_test)
    assert result.p_value < 0.01 and result.mean_loss_difference < 0


def test_pregame_features_bad_halflife(shipped_games: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="positive"):
        pregame_features(shipped_games.head(10), halflife_games=0)
