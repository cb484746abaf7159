"""Loading a saved model directory whatever its class: the class is read from its JSON
(``ensemble.json`` for the ensemble, ``params.json`` for one forecaster), never from code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nba_forecast.models.base import META_FILE, PathLike
from nba_forecast.models.ensemble import COMPONENT_CLASSES, ENSEMBLE_FILE, HalftimeEnsemble


def load_model(directory: PathLike) -> Any:
    """The model saved in ``directory``: a ``HalftimeEnsemble`` or one forecaster."""
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such directory; expected a saved model directory")
    if (path / ENSEMBLE_FILE).is_file():
        return HalftimeEnsemble.load(path)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{path}: neither {ENSEMBLE_FILE} nor {META_FILE}; not a saved model directory"
        )
    try:
        name = json.loads(meta_file.read_text()).get("class")
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"{meta_file}: not a model's JSON") from None
    if name not in COMPONENT_CLASSES:
        known = ", ".join(["HalftimeEnsemble", *COMPONENT_CLASSES])
        raise ValueError(f"{path} holds a {name!r}; expected one of {known}")
    return COMPONENT_CLASSES[name].load(path)
