from __future__ import annotations

import numpy as np
import pytest

from nba_forecast.evaluation.metrics import forecast_metrics, winkler_score
from nba_forecast.evaluation.paired_tests import diebold_mariano


def test_point_and_interval_metrics() -> None:
    y = np.array([0.0, 2.0, 4.0, 10.0])
    f = np.array([1.0, 2.0, 2.0, 6.0])
    m = forecast_metrics(y, f, lower=f - 3, upper=f + 3, alpha=0.05)
    assert m.n == 4 and m.mae == pytest.approx(7 / 4) and m.bias == pytest.approx(-5 / 4)
    assert m.rmse == pytest.approx(np.sqrt(21 / 4))
    assert m.coverage == 0.75 and m.mean_width == 6.0
    # the one miss is 1 point above: 6 + 2/0.05 * 1
    assert winkler_score(y, f - 3, f + 3)[3] == pytest.approx(46.0)
    assert m.winkler == pytest.approx((6 * 3 + 46) / 4)
    assert forecast_metrics(y, f).coverage is None


@pytest.mark.parametrize(
    ("y", "f", "message"),
    [
        ([], [], "non-empty"),
        ([1.0, 2.0], [1.0], "differ in shape"),
        ([1.0, np.nan], [1.0, 2.0], "finite"),
    ],
)
def test_metrics_bad_input(y: list, f: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        forecast_metrics(y, f)


def test_metrics_reject_crossed_interval() -> None:
    with pytest.raises(ValueError, match="lower bound above upper"):
        forecast_metrics([1.0], [1.0], lower=[2.0], upper=[0.0])


def test_dm_detects_a_better_forecast_and_not_an_equal_one() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 5, 3000)
    better = diebold_mariano(noise * 0.9, noise + rng.normal(0, 1, 3000))
    assert better.statistic < 0 and better.p_value < 0.001
    # two forecasts from the same distribution: p-values roughly uniform, rarely tiny
    p_values = [
        diebold_mariano(rng.normal(0, 5, 500), rng.normal(0, 5, 500)).p_value for _ in range(200)
    ]
    assert 0.01 < np.mean(np.array(p_values) < 0.05) < 0.12
    worse = diebold_mariano(noise * 1.2, noise)
    assert worse.p_value > 0.99


def test_dm_bad_input_and_ties() -> None:
    with pytest.raises(ValueError, match="same length"):
        diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 3"):
        diebold_mariano([1.0], [2.0])
    with pytest.raises(ValueError, match="finite"):
        diebold_mariano([1.0, np.inf, 2.0], [1.0, 2.0, 3.0])
    assert diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]).p_value == 0.5
