"""scikit-learn's estimator protocol, duck-typed: ``get_params(deep)``, ``set_params``,
``score`` (R^2) and the tags, so ``sklearn.base.clone``, grid searches and
``sklearn.utils.estimator_checks`` work on our models without scikit-learn being a runtime
dependency (it is imported only when scikit-learn itself asks for the tags).

Parameters are the keyword arguments of ``__init__``, stored unchanged under the same name
(the convention scikit-learn's "developing estimators" guide sets out)."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections import defaultdict
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray


def r2_score(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """The coefficient of determination, as ``sklearn.metrics.r2_score``: 1 is perfect, 0 is
    the mean's skill; a constant target gives 1.0 if predicted exactly, else 0.0."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    f = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != f.shape or y.size == 0:
        raise ValueError(f"need equal, non-empty targets and forecasts, got {y.shape}, {f.shape}")
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, float).ravel()
    if w.shape != y.shape:
        raise ValueError(f"sample_weight has shape {w.shape}; expected {y.shape}")
    residual = float(w @ (y - f) ** 2)
    total = float(w @ (y - np.average(y, weights=w)) ** 2)
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / total


class Estimator(ABC):
    """The protocol for a regressor; subclasses store each ``__init__`` argument as is."""

    @classmethod
    def _param_names(cls) -> list[str]:
        if cls.__init__ is object.__init__:
            return []
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        parameters = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in parameters if p.name != "self" and p.kind not in skip)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters; with ``deep``, those of nested estimators too, as
        ``name__parameter``."""
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(params.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    nested = value.get_params(deep=True)
                    params.update((f"{name}__{key}", v) for key, v in nested.items())
        return params

    def set_params(self, **params: Any) -> Self:
        """Set parameters (``name`` or ``name__nested``); an unknown name is a ValueError
        that lists the valid ones. Takes effect at the next ``fit``."""
        valid = self._param_names()
        nested: dict[str, dict[str, Any]] = defaultdict(dict)
        for key, value in params.items():
            name, _, rest = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; valid parameters: "
                    f"{', '.join(valid) or 'none'}"
                )
            if rest:
                nested[name][rest] = value
            else:
                setattr(self, name, value)
        for name, values in nested.items():
            getattr(self, name).set_params(**values)
        return self

    @abstractmethod
    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Halftime-margin forecasts, one per row of ``X``."""

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """R^2 of ``predict(X)`` against the halftime margins ``y`` (what scikit-learn
        regressors return; the project's reports use MAE)."""
        return r2_score(y, self.predict(X), sample_weight)

    def __sklearn_tags__(self) -> Any:
        """A regressor that needs ``y`` (asked for only by scikit-learn, so installed)."""
        from sklearn.utils import RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="regressor",
            target_tags=TargetTags(required=True),
            regressor_tags=RegressorTags(),
        )

    def __repr__(self) -> str:
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self"
        }
        shown = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if defaults.get(name) is not value and not _equal(defaults.get(name), value)
        ]
        return f"{type(self).__name__}({', '.join(shown)})"


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays, odd objects: not equal for display
        return False


class NamedEstimators(Estimator):
    """An estimator holding other estimators in a dict parameter (``estimators_param``),
    exposed by name as in scikit-learn's ``VotingRegressor``: ``get_params(deep=True)`` has
    ``name`` and ``name__parameter``; ``set_params(name=other)`` replaces one,
    ``set_params(name__parameter=value)`` sets its parameter."""

    estimators_param = "components"

    def _named(self) -> dict[str, Any]:
        named = getattr(self, self.estimators_param)
        return named if isinstance(named, dict) else {}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=False)
        if deep:
            for name, model in self._named().items():
                params[name] = model
                nested = model.get_params(deep=True)
                params.update((f"{name}__{key}", value) for key, value in nested.items())
        return params

    def set_params(self, **params: Any) -> Self:
        named = self._named()
        own = {k: v for k, v in params.items() if k.partition("__")[0] not in named}
        if own:  # checked first: an unknown name changes nothing
            try:
                super().set_params(**own)
            except ValueError as error:
                raise ValueError(f"{error}; components: {', '.join(named) or 'none'}") from None
        for key, value in params.items():
            name, _, rest = key.partition("__")
            if key not in own:
                if rest:
                    named[name].set_params(**{rest: value})
                else:
                    named[name] = value
        return self
