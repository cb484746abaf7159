"""Parsing a period clock (time remaining, ``mm:ss``) into seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd

CLOCK_PATTERN = r"([0-9]{1,2}):([0-5][0-9])(?:\.[0-9]+)?"  # ASCII digits only


def parse_clock(text: pd.Series) -> pd.Series:
    """Seconds remaining for ``mm:ss`` strings (``12:00`` -> 720); NaN where unparseable."""
    parts = text.astype("string").str.strip().str.fullmatch(CLOCK_PATTERN)
    parts = parts.fillna(False).astype(bool)
    groups = text.astype("string").str.strip().str.extract(CLOCK_PATTERN)
    seconds = groups[0].astype(float) * 60 + groups[1].astype(float)
    return seconds.where(parts.to_numpy(), np.nan)
