"""LSTM forecaster: the margin path m_0..m_18 in, the 6-minute change m_24 - m_18 out.

Inputs are divided by a fixed constant (not per window: the size of a lead matters); the
pre-game features join the LSTM's last hidden state before the output layer. Trained with an
absolute-error loss (the evaluation metric is MAE), early stopping on a validation split
(never on training loss), float32, large batches, CUDA when present (``device="auto"``).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from nba_forecast.models.base import (
    N_INPUT_MINUTES,
    FitExtras,
    Forecaster,
    PathLike,
    check_margins,
    check_target,
    read_meta,
    write_meta,
)

logger = logging.getLogger(__name__)


class _Network(nn.Module):
    def __init__(self, n_features: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(
            nn.Linear(hidden_size + n_features + 1, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
        )

    def forward(self, paths: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(paths.unsqueeze(-1))
        # the current margin goes straight to the head too: the change depends on the lead
        joined = torch.cat([hidden[-1], features, paths[:, -1:]], dim=1)
        return self.head(joined).squeeze(-1)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


class LSTMForecaster(Forecaster):
    state_names: ClassVar[tuple[str, ...]] = ("network_", "n_features_in_", "history_")
    network_: _Network
    n_features_in_: int
    history_: NDArray[np.float64]

    def __init__(
        self,
        *,
        hidden_size: int = 16,
        num_layers: int = 1,
        max_epochs: int = 40,
        patience: int = 5,
        batch_size: int = 1024,
        learning_rate: float = 3e-3,
        scale: float = 10.0,
        validation_fraction: float = 0.15,
        device: str = "auto",
        random_state: int = 0,
        warm_start: bool = False,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.scale = scale
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.warm_start = warm_start

    def _tensors(self, X: NDArray[np.float64], device: torch.device) -> tuple[torch.Tensor, ...]:
        paths = torch.as_tensor(X[:, :N_INPUT_MINUTES] / self.scale, dtype=torch.float32)
        features = torch.as_tensor(X[:, N_INPUT_MINUTES:] / self.scale, dtype=torch.float32)
        return paths.to(device), features.to(device)

    def _split(
        self, X: NDArray, y: NDArray, X_val: ArrayLike | None, y_val: ArrayLike | None
    ) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        if X_val is not None and y_val is not None:
            Xv = check_margins(X_val, "X_val", n_columns=X.shape[1])
            return X, y, Xv, check_target(y_val, len(Xv))
        if not 0 < self.validation_fraction < 1:
            raise ValueError("validation_fraction must be in (0, 1) when no X_val is given")
        # the last rows are the latest games: validate on them, never on a shuffle
        cut = round(len(X) * (1 - self.validation_fraction))
        if cut < 1 or cut >= len(X):
            raise ValueError(f"too few games ({len(X)}) to hold out a validation split")
        return X[:cut], y[:cut], X[cut:], y[cut:]

    def _fit(self, X: NDArray[np.float64], y: NDArray[np.float64], extras: FitExtras) -> None:
        """Train; early-stop on (X_val, y_val), or on the latest ``validation_fraction`` of
        the games when none is given. With ``warm_start`` a fitted model continues from its
        weights. ``info`` is not used."""
        X_, y_ = X, y
        X_train, y_train, X_valid, y_valid = self._split(X_, y_, extras.X_val, extras.y_val)
        device = resolve_device(self.device)
        torch.manual_seed(self.random_state)
        generator = torch.Generator().manual_seed(self.random_state)
        network = self._network(X_.shape[1], device)
        train = (*self._tensors(X_train, device), self._change(X_train, y_train, device))
        valid = (*self._tensors(X_valid, device), self._change(X_valid, y_valid, device))
        start = time.perf_counter()
        best, history = self._train(network, train, valid, generator, device)
        self.network_ = network.cpu().eval()
        self.n_features_in_ = X_.shape[1]
        self.history_ = np.array(history)
        self.fit_seconds_ = time.perf_counter() - start
        logger.info(
            "lstm: %d epochs, best validation MAE %.3f, %.1fs on %s",
            len(history),
            best * self.scale,
            self.fit_seconds_,
            device,
        )

    def _network(self, n_columns: int, device: torch.device) -> _Network:
        """The fitted network to continue from (``warm_start``), else a new one."""
        if self.warm_start and hasattr(self, "network_"):
            if int(self.n_features_in_) != n_columns:
                raise ValueError("warm start needs the same input columns as the first fit")
            return self.network_.to(device)
        return _Network(n_columns - N_INPUT_MINUTES, self.hidden_size, self.num_layers).to(device)

    def _change(self, X: NDArray, y: NDArray, device: torch.device) -> torch.Tensor:
        """The scaled target: the 6-minute change m_24 - m_18."""
        change = (y - X[:, N_INPUT_MINUTES - 1]) / self.scale
        return torch.as_tensor(change, dtype=torch.float32, device=device)

    def _train(
        self,
        network: _Network,
        train: tuple[torch.Tensor, ...],
        valid: tuple[torch.Tensor, ...],
        generator: torch.Generator,
        device: torch.device,
    ) -> tuple[float, list[float]]:
        """Absolute-error epochs until ``patience`` epochs without a better validation MAE;
        the network ends with its best weights. Returns the best (scaled) validation MAE and
        each epoch's validation MAE."""
        optimizer = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
        paths, features, target = train
        val_paths, val_features, val_change = valid
        best, best_state, stale, history = np.inf, copy.deepcopy(network.state_dict()), 0, []
        for _ in range(self.max_epochs):
            network.train()
            order = torch.randperm(len(target), generator=generator).to(device)
            for batch in order.split(self.batch_size):
                optimizer.zero_grad()
                loss = (network(paths[batch], features[batch]) - target[batch]).abs().mean()
                loss.backward()
                optimizer.step()
            network.eval()
            with torch.no_grad():
                val_mae = float((network(val_paths, val_features) - val_change).abs().mean())
            history.append(val_mae * self.scale)
            if val_mae < best - 1e-5:
                best, best_state, stale = val_mae, copy.deepcopy(network.state_dict()), 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        network.load_state_dict(best_state)
        return float(best), history

    def warm_copy(self) -> Self:
        """A deep copy (network weights included) with ``warm_start=True``: fitting the copy
        continues from these weights and never changes ``self``. No optimiser state lives
        between fits (each ``fit`` starts a fresh Adam), so the network is all there is."""
        self._require_fitted()
        twin = copy.deepcopy(self)
        twin.warm_start = True
        return twin

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        self._require_fitted()
        X_ = check_margins(X, n_columns=int(self.n_features_in_))
        paths, features = self._tensors(X_, torch.device("cpu"))
        with torch.no_grad():
            change = self.network_(paths, features).numpy().astype(np.float64)
        return X_[:, N_INPUT_MINUTES - 1] + change * self.scale

    # weights go to weights.pt as a state_dict; loading reads tensors only
    def save(self, directory: PathLike) -> Path:
        self._require_fitted()
        directory = Path(directory)
        history = [float(v) for v in self.history_]
        fields = {
            "params": self.get_params(deep=False),
            "n_features_in": int(self.n_features_in_),
            "history": history,
        }
        write_meta(directory, self, fields)
        torch.save(self.network_.state_dict(), directory / "weights.pt")
        return directory

    @classmethod
    def load(cls, directory: PathLike) -> Self:
        directory = Path(directory)
        meta = read_meta(directory, cls)
        model = cls(**meta["params"])
        n_features = int(meta["n_features_in"]) - N_INPUT_MINUTES
        network = _Network(n_features, model.hidden_size, model.num_layers)
        state = torch.load(directory / "weights.pt", map_location="cpu", weights_only=True)
        network.load_state_dict(state)
        model.network_ = network.eval()
        model.n_features_in_ = int(meta["n_features_in"])
        model.history_ = np.array(meta["history"])
        return model
