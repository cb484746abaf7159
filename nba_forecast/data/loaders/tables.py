"""Reading tabular input files with errors that say what is wrong with the file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from nba_forecast.data.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def read_table(path: Path, *, as_text: bool = True) -> pd.DataFrame:
    """A CSV (optionally gzipped) or Parquet file as a frame; CSV cells kept as text."""
    source = str(path)
    if not path.exists():
        raise DataError("file_not_found", "no such file", source=source)
    if path.is_dir():
        raise DataError("not_a_file", "is a directory", source=source, expected="a file")
    try:
        if is_parquet(path):
            return pd.read_parquet(path)
        return pd.read_csv(
            path,
            dtype=str if as_text else None,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise DataError("empty_file", "the file is empty", source=source) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(
            "unreadable_file",
            f"cannot be read as {'Parquet' if is_parquet(path) else 'CSV'}: {exc}".strip(),
            source=source,
        ) from None


def require_columns(frame: pd.DataFrame, required: Iterable[str], source: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            "missing_columns",
            f"missing column(s) {', '.join(missing)}",
            source=source,
            expected=f"a header with {', '.join(required)}",
        )


def file_rows(frame: pd.DataFrame) -> pd.Series:
    """1-based line numbers in a CSV file with a one-line header."""
    return pd.Series(frame.index.to_numpy() + 2, index=frame.index)


def normalize_game_ids(ids: pd.Series) -> pd.Series:
    """stats.nba.com ids lose their leading zeros in spreadsheets; restore them."""
    text = ids.astype("string").str.strip()
    digits = text.str.fullmatch(r"\d{1,10}").fillna(False).astype(bool)
    return text.where(~digits, text.str.zfill(10))


RowCheck = tuple[pd.Series, str, "str | pd.Series", str]


def first_row_errors(
    game_ids: pd.Series, rows: pd.Series, checks: list[RowCheck], source: str
) -> list[DataError]:
    """One error per game: the first failing row of the first failing check.

    Each check is ``(bad_mask, code, problem, expected)``; ``problem`` is a string or a
    Series of per-row messages.
    """
    errors: list[DataError] = []
    failed_games: set[str] = set()
    for bad, code, problem, expected in checks:
        hits = bad & ~game_ids.isin(failed_games)
        for index in game_ids[hits].drop_duplicates().index:
            text = problem if isinstance(problem, str) else str(problem[index])
            game_id = str(game_ids[index])
            errors.append(
                DataError(
                    code,
                    text,
                    source=source,
                    game_id=game_id,
                    row=int(rows[index]),
                    expected=expected,
                )
            )
            failed_games.add(game_id)
    return errors
