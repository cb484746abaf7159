"""Every kind of bad input gets its own specific error naming file, game, row, expectation."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from nba_forecast.data.errors import DataError
from nba_forecast.data.loaders import detect_format, load_games, load_stats_pbp
from nba_forecast.data.schema import FIRST_HALF_COLUMNS, MARGIN_COLUMNS
from tests.conftest import PBP_DIR

PBP_HEADER = "GAME_ID,EVENTNUM,EVENTMSGTYPE,PERIOD,PCTIMESTRING,HOMEDESCRIPTION,SCORE"


def _events_csv(rows: list[str], header: str = "game_id,period,elapsed_s,home,away") -> str:
    return "\n".join([header, *rows]) + "\n"


def _full_game_events(game_id: str = "0021300001") -> list[str]:
    """A valid tiny game: one basket late in each quarter, home wins 5-3 (a period that
    ends 6:00 after its last score looks cut off)."""
    return [
        f"{game_id},1,700,2,0",
        f"{game_id},2,1400,2,3",
        f"{game_id},3,2100,4,3",
        f"{game_id},4,2850,5,3",
    ]


def _margins_row(game_id: str = "0021300001", **changes: str) -> dict[str, str]:
    row = {"game_id": game_id, "season": "2013", **{c: "1" for c in MARGIN_COLUMNS}}
    row["m_0"] = "0"
    row.update(changes)
    return row


def _margins_csv(rows: list[dict[str, str]]) -> str:
    return pd.DataFrame(rows).to_csv(index=False)


def _pbp_with(edit_line: int, new_line: str) -> str:
    lines = (PBP_DIR / "0021300001.csv").read_text().splitlines()
    lines[edit_line - 1] = new_line
    return "\n".join(lines) + "\n"


def _scoring_line(text: str) -> tuple[int, str]:
    """(line number, line) of the first scoring row in the good fixture."""
    for number, line in enumerate(text.splitlines(), start=1):
        cells = line.split(",")
        if number > 1 and cells[2] in {"1", "3"} and cells[10]:
            return number, line
    raise AssertionError("no scoring row")


GOOD = (PBP_DIR / "0021300001.csv").read_text()
FIRST_SCORE_LINE, FIRST_SCORE = _scoring_line(GOOD)


def _replace_cell(line: str, index: int, value: str) -> str:
    cells = line.split(",")
    cells[index] = value
    return ",".join(cells)


CASES = [
    # (id, file name, content, format, expected code, expected row)
    (
        "pbp-missing-columns",
        "g.csv",
        "GAME_ID,PERIOD\n0021300001,1\n",
        "stats-pbp",
        "missing_columns",
        None,
    ),
    (
        "pbp-unparseable-clock",
        "g.csv",
        _pbp_with(FIRST_SCORE_LINE, _replace_cell(FIRST_SCORE, 6, "11:7x")),
        "stats-pbp",
        "unparseable_clock",
        FIRST_SCORE_LINE,
    ),
    (
        "pbp-bad-score-string",
        "g.csv",
        _pbp_with(FIRST_SCORE_LINE, _replace_cell(FIRST_SCORE, 10, "2月7日")),
        "stats-pbp",
        "bad_score_string",
        FIRST_SCORE_LINE,
    ),
    (
        "pbp-bad-period",
        "g.csv",
        _pbp_with(FIRST_SCORE_LINE, _replace_cell(FIRST_SCORE, 4, "one")),
        "stats-pbp",
        "bad_period",
        FIRST_SCORE_LINE,
    ),
    ("pbp-empty-rows", "g.csv", PBP_HEADER + "\n", "stats-pbp", "empty_file", None),
    ("empty-file", "g.csv", "", "events", "empty_file", None),
    (
        "events-no-time-column",
        "e.csv",
        "game_id,period,home,away\n0021300001,1,2,0\n",
        "events",
        "missing_columns",
        None,
    ),
    (
        "events-score-goes-down",
        "e.csv",
        _events_csv(["0021300001,1,100,2,0", "0021300001,1,200,1,0", "0021300001,2,800,3,0"]),
        "events",
        "non_monotonic_score",
        3,
    ),
    (
        "events-period-out-of-range",
        "e.csv",
        _events_csv(["0021300001,0,10,2,0"]),
        "events",
        "period_out_of_range",
        2,
    ),
    (
        "events-clock-out-of-range",
        "e.csv",
        _events_csv(["0021300001,2,300,2,0"]),
        "events",
        "clock_out_of_range",
        2,
    ),
    (
        "events-remaining-clock-out-of-range",
        "e.csv",
        _events_csv(["0021300001,1,800,2,0"], "game_id,period,remaining_s,home,away"),
        "events",
        "clock_out_of_range",
        2,
    ),
    (
        "events-unparseable-clock",
        "e.csv",
        _events_csv(["0021300001,1,7:6,2,0"], "game_id,period,clock,home,away"),
        "events",
        "unparseable_clock",
        2,
    ),
    (
        "events-ends-before-halftime",
        "e.csv",
        _events_csv(["0021300001,1,100,2,0"]),
        "events",
        "ends_before_halftime",
        2,
    ),
    (
        "events-missing-period",
        "e.csv",
        _events_csv(["0021300001,1,100,2,0", "0021300001,3,1500,2,3"]),
        "events",
        "missing_period",
        3,
    ),
    (
        "events-score-not-number",
        "e.csv",
        _events_csv(["0021300001,1,100,two,0"]),
        "events",
        "bad_score",
        2,
    ),
    (
        "events-overtime-without-tie",
        "e.csv",
        _events_csv([*_full_game_events(), "0021300001,5,2900,7,3"]),
        "events",
        "overtime_inconsistent",
        6,
    ),
    (
        "events-tie-without-overtime",
        "e.csv",
        _events_csv([*_full_game_events()[:3], "0021300001,4,2200,4,4"]),
        "events",
        "overtime_inconsistent",
        5,
    ),
    (
        "margins-missing-columns",
        "m.csv",
        "game_id,season,m_0\n0021300001,2013,0\n",
        "margins",
        "missing_columns",
        None,
    ),
    (
        "margins-duplicate-game-id",
        "m.csv",
        _margins_csv([_margins_row(), _margins_row()]),
        "margins",
        "duplicate_game_id",
        3,
    ),
    ("margins-nan", "m.csv", _margins_csv([_margins_row(m_7="NaN")]), "margins", "bad_margin", 2),
    (
        "margins-empty-first-half",
        "m.csv",
        _margins_csv([_margins_row(m_7="")]),
        "margins",
        "missing_margin",
        2,
    ),
    (
        "margins-infinite",
        "m.csv",
        _margins_csv([_margins_row(m_7="inf")]),
        "margins",
        "nonfinite_margin",
        2,
    ),
    (
        "margins-fraction",
        "m.csv",
        _margins_csv([_margins_row(m_7="1.5")]),
        "margins",
        "bad_margin",
        2,
    ),
    (
        "margins-nonzero-tipoff",
        "m.csv",
        _margins_csv([_margins_row(m_0="3")]),
        "margins",
        "nonzero_tipoff",
        2,
    ),
    (
        "margins-impossible-swing",
        "m.csv",
        _margins_csv([_margins_row(m_9="40")]),
        "margins",
        "impossible_margin_change",
        2,
    ),
    (
        "margins-partial-second-half",
        "m.csv",
        _margins_csv([_margins_row(m_40="")]),
        "margins",
        "incomplete_second_half",
        2,
    ),
    (
        "margins-bad-date",
        "m.csv",
        _margins_csv([_margins_row(game_date="yesterday")]),
        "margins",
        "bad_date",
        2,
    ),
    (
        "margins-bad-season",
        "m.csv",
        _margins_csv([_margins_row(season="20x3")]),
        "margins",
        "bad_season",
        2,
    ),
    (
        "margins-empty-game-id",
        "m.csv",
        _margins_csv([_margins_row(game_id="")]),
        "margins",
        "missing_game_id",
        2,
    ),
    (
        "margins-bad-season-type",
        "m.csv",
        _margins_csv([_margins_row(season_type="summer")]),
        "margins",
        "bad_season_type",
        2,
    ),
    ("margins-not-parquet", "m.parquet", "this is not parquet", "margins", "unreadable_file", None),
]


@pytest.mark.parametrize(
    ("name", "content", "file_format", "code", "row"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_gives_its_specific_error(
    tmp_path: Path, name: str, content: str, file_format: str, code: str, row: int | None
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as info:
        load_games(path, file_format)  # type: ignore[arg-type]
    error = info.value
    assert error.code == code, str(error)
    assert error.source == str(path)
    assert str(path) in str(error)
    if row is not None:
        assert error.row == row, str(error)
        assert f"row {row}" in str(error)
        assert error.game_id is None or error.game_id in str(error)


def test_at_least_fifteen_distinct_error_codes() -> None:
    assert len({case[4] for case in CASES}) >= 15


def test_skip_mode_keeps_good_games_and_reports_each_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    rows = [
        *_full_game_events("0021300001"),
        "0021300002,1,100,2,0",
        "0021300002,1,200,1,0",
        "0021300002,2,800,3,0",  # goes down
        *_full_game_events("0021300003"),
        "0021300004,1,100,2,0",  # ends in Q1
    ]
    path.write_text(_events_csv(rows))
    with pytest.raises(DataError):
        load_games(path)
    result = load_games(path, on_error="skip")
    assert sorted(result.games["game_id"]) == ["0021300001", "0021300003"]
    assert {p.game_id: p.code for p in result.problems} == {
        "0021300002": "non_monotonic_score",
        "0021300004": "ends_before_halftime",
    }
    assert result.skipped_game_ids == ["0021300002", "0021300004"]


def test_margins_duplicate_ids_skip_both_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(_margins_csv([_margins_row(), _margins_row(), _margins_row("0021300002")]))
    result = load_games(path, on_error="skip")
    assert list(result.games["game_id"]) == ["0021300002"]
    assert [p.code for p in result.problems] == ["duplicate_game_id"]


def test_duplicate_game_across_stats_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(GOOD)
    second.write_text(GOOD)
    with pytest.raises(DataError) as info:
        load_stats_pbp([first, second])
    assert info.value.code == "duplicate_game_id"
    assert info.value.source == str(second) and str(first) in str(info.value)


def test_gzipped_events_and_first_half_only_games(tmp_path: Path) -> None:
    path = tmp_path / "e.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(
            _events_csv(
                [
                    "0021300001,1,0,1,0",
                    "0021300001,1,720,3,0",
                    "0021300001,2,720,3,3",
                    "0021300001,2,1440,3,5",
                ]
            )
        )
    games = load_games(path).games
    row = games.iloc[0]
    # 12:00 of Q1 counts toward m_1; 0:00 of Q1 toward m_12; 12:00 of Q2 toward m_13
    assert [row[f"m_{k}"] for k in (0, 1, 11, 12, 13, 24)] == [0, 1, 1, 3, 0, -2]
    assert pd.isna(row["m_25"]) and pd.isna(row["final_home"])


def test_detect_format_rejects_unknown_header(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="unknown_format"):
        detect_format(path)
    with pytest.raises(DataError, match="file_not_found"):
        detect_format(tmp_path / "missing.csv")


def test_unknown_season_for_non_stats_ids(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(_events_csv(_full_game_events("my-game")))
    with pytest.raises(DataError, match="unknown_season"):
        load_games(path)
    with_season = tmp_path / "s.csv"
    with_season.write_text(
        "game_id,season,period,elapsed_s,home,away\n"
        + "\n".join(
            f"my-game,2019,{r.split(',', 2)[1]},{r.split(',', 2)[2]}"
            for r in _full_game_events("my-game")
        )
        + "\n"
    )
    games = load_games(with_season).games
    assert games.loc[0, "season"] == 2019 and games.loc[0, "m_48"] == 2


def test_first_half_columns_constant() -> None:
    assert FIRST_HALF_COLUMNS[-1] == "m_24" and len(FIRST_HALF_COLUMNS) == 25
