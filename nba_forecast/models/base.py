"""What every forecaster shares: input checks, the unfitted error, directory save/load.

A model directory holds ``params.json`` (class, parameters, library version) and
``state.npz`` (fitted arrays). Loading reads JSON and plain arrays only, never code.
"""

from __future__ import annotations

import json
import os
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

import nba_forecast
from nba_forecast.data.schema import FORECAST_MINUTE
from nba_forecast.models.estimator import Estimator

if TYPE_CHECKING:
    import pandas as pd

N_INPUT_MINUTES = FORECAST_MINUTE + 1  # m_0 .. m_18
META_FILE = "params.json"
PathLike = str | os.PathLike[str]


class NotFittedError(RuntimeError, ValueError, AttributeError):
    """A model was used before ``fit``. Also a ValueError and an AttributeError, as
    scikit-learn's own (what its tools and checks catch)."""


def check_margins(
    X: ArrayLike, name: str = "X", n_columns: int | None = None
) -> NDArray[np.float64]:
    """Model input, one row per game: m_0..m_18, then any pre-game feature columns.

    Dense real numbers, 2-d, at least 19 columns (exactly ``n_columns`` when given), finite,
    not empty. Checked in scikit-learn's order and wording, so its tools read the errors.
    """
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(f"{name} is a sparse matrix; sparse input is not supported (dense only)")
    array = np.asarray(X)
    if np.iscomplexobj(array):
        raise ValueError(f"{name}: Complex data not supported; margins are real numbers")
    array = array.astype(np.float64, copy=False)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-d, one row per game (m_0..m_{FORECAST_MINUTE} then pre-game "
            f"features), got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one game")
    if array.shape[1] < N_INPUT_MINUTES:
        raise ValueError(
            f"{name} has {array.shape[1]} feature(s) (shape={array.shape}) while a minimum of "
            f"{N_INPUT_MINUTES} is required: m_0..m_{FORECAST_MINUTE}, then pre-game features"
        )
    if n_columns is not None and array.shape[1] != n_columns:
        raise ValueError(f"{name} has {array.shape[1]} columns; the model was fit on {n_columns}")
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ValueError(f"{name} has NaN or infinite values (first in row {row})")
    return array


def check_target(y: ArrayLike, n: int, name: str = "y") -> NDArray[np.float64]:
    if y is None:
        raise ValueError(f"this model requires {name} to be passed, but the target {name} is None")
    array = np.asarray(y, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (the halftime margins), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has NaN or infinite values")
    return array


@dataclass(frozen=True)
class FitExtras:
    """What ``fit`` passes besides the training games; a forecaster uses what it needs."""

    X_val: ArrayLike | None = None
    y_val: ArrayLike | None = None
    info: pd.DataFrame | None = None


class Forecaster(Estimator):
    """Base class: subclasses set ``state_names`` (fitted attributes ending in ``_``).

    Every forecaster is fitted the same way, ``fit(X, y, X_val=..., y_val=..., info=...)``:
    ``X_val``/``y_val`` are validation games (the LSTM early-stops on them), ``info`` the
    game id, date and teams of each row of ``X`` (Dejavu explains its forecasts with it).
    A forecaster ignores what it does not use. The scikit-learn protocol (``get_params``,
    ``set_params``, ``score``, ``clone``) comes from ``Estimator``."""

    state_names: ClassVar[tuple[str, ...]] = ()

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        X_val: ArrayLike | None = None,
        y_val: ArrayLike | None = None,
        info: pd.DataFrame | None = None,
    ) -> Self:
        """Check the games, then fit (``_fit`` in each forecaster); returns ``self``."""
        if y is None:  # before X: "no target" is the mistake to report
            check_target(y, 0)
        X_ = check_margins(X)
        self._fit(X_, check_target(y, len(X_)), FitExtras(X_val, y_val, info))
        self.n_features_in_ = X_.shape[1]
        return self

    @abstractmethod
    def _fit(self, X: NDArray[np.float64], y: NDArray[np.float64], extras: FitExtras) -> None:
        """Fit on checked games; set the fitted state (names ending in ``_``)."""

    def _require_fitted(self) -> None:
        if any(not hasattr(self, name) for name in self.state_names):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(X, y) first")

    def save(self, directory: PathLike) -> Path:
        """Write the model to ``directory`` (created if needed); returns it as a Path."""
        self._require_fitted()
        directory = Path(directory)
        fields: dict[str, Any] = {"params": self.get_params(deep=False)}
        if "n_features_in_" not in self.state_names and hasattr(self, "n_features_in_"):
            fields["n_features_in"] = int(self.n_features_in_)
        write_meta(directory, self, fields)
        state = {name: np.asarray(getattr(self, name)) for name in self.state_names}
        np.savez(directory / "state.npz", allow_pickle=False, **state)
        return directory

    @classmethod
    def load(cls, directory: PathLike) -> Self:
        directory = Path(directory)
        meta = read_meta(directory, cls)
        model = cls(**meta["params"])
        if "n_features_in" in meta:  # absent in directories saved before it was kept
            model.n_features_in_ = int(meta["n_features_in"])
        with np.load(directory / "state.npz", allow_pickle=False) as state:
            for name in cls.state_names:
                value = state[name]
                setattr(model, name, value.item() if value.ndim == 0 else value)
        return model


def write_meta(
    directory: Path, model: object, fields: dict[str, Any], name: str = META_FILE
) -> None:
    """A model directory's JSON: its class, the library version and ``fields``."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"class": type(model).__name__, "library_version": nba_forecast.__version__, **fields}
    (directory / name).write_text(json.dumps(meta, indent=2, sort_keys=True))


def read_meta(directory: Path, cls: type, name: str = META_FILE) -> dict[str, Any]:
    """The JSON of a saved model directory, checked to hold a ``cls``."""
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {name}; not a saved model directory")
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("class") != cls.__name__:
        raise ValueError(f"{directory} holds a {meta.get('class')}, not a {cls.__name__}")
    return meta
