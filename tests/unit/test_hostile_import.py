"""Truncated, oversized and hostile input files: a specific error, never a wrong game or a
traceback (real stats.nba.com files from tests/fixtures/pbp, damaged the ways files are)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.data.errors import DataError
from nba_forecast.data.loaders import csv_rows, load_games, load_stats_pbp, tables
from nba_forecast.data.schema import MARGIN_COLUMNS, margin_matrix
from tests.conftest import BROKEN_PBP, GOOD_PBP, PBP_DIR

runner = CliRunner()
GAME = "0021300457"
FULL = (PBP_DIR / f"{GAME}.csv").read_bytes()
FIXTURES = sorted(PBP_DIR.glob("*.csv"))
# every code a damaged copy of a fixture may give (the complete file gives its game)
TRUNCATION_CODES = {
    "empty_file",
    "missing_columns",
    "truncated_line",
    "incomplete_game",
    "wrong_field_count",
    "ends_before_halftime",
    "missing_period",
    "overtime_inconsistent",  # cut after regulation of an overtime game: it ends tied
    *BROKEN_PBP.values(),
}


def _write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _lines() -> list[str]:
    return FULL.decode().splitlines(keepends=True)


def _edited(edit) -> str:  # type: ignore[no-untyped-def]
    """The fixture with ``edit(cells)`` applied to each row's cells (header untouched)."""
    lines = _lines()
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.rstrip("\n").split(",")
        out.append(",".join(edit(cells)) + "\n")
    return "".join(out)


def _load_error(path: Path, **kwargs) -> DataError:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError) as info:
        load_games(path, **kwargs)
    return info.value


# --- truncated play-by-play: the cases of the issue ---------------------------------------


@pytest.mark.parametrize("cut", [11_000, 15_000, 26_000])
def test_a_truncated_file_is_an_error_naming_file_game_and_row(tmp_path: Path, cut: int) -> None:
    path = _write(tmp_path / "cut.csv", FULL[:cut])
    error = _load_error(path)
    assert error.code in {"truncated_line", "incomplete_game"}
    assert error.source == str(path) and error.game_id == GAME and error.row is not None
    assert str(path) in str(error) and f"row {error.row}" in str(error)
    # cut at a line break, the same file is still not a game: the periods do not end
    whole_lines = FULL[: FULL.rindex(b"\n", 0, cut) + 1]
    error = _load_error(_write(tmp_path / "lines.csv", whole_lines))
    assert error.code == "incomplete_game", str(error)


def test_cli_import_and_validate_refuse_a_truncated_game(tmp_path: Path) -> None:
    path = _write(tmp_path / "cut.csv", FULL[:11_000])
    out = tmp_path / "games.parquet"
    imported = runner.invoke(app, ["data", "import", str(path), "--out", str(out)])
    assert imported.exit_code == 1 and "nothing written" in imported.output
    assert "truncated_line" in imported.output and not out.exists()
    validated = runner.invoke(app, ["data", "validate", str(path)])
    assert validated.exit_code == 1 and "all valid" not in validated.output
    assert GAME in validated.output


@pytest.mark.parametrize("truncated_first", [True, False])
def test_a_directory_with_a_good_and_a_truncated_copy_keeps_the_good_one(
    tmp_path: Path, truncated_first: bool
) -> None:
    names = ("a.csv", "b.csv") if truncated_first else ("b.csv", "a.csv")
    _write(tmp_path / names[0], FULL[:26_000])
    _write(tmp_path / names[1], FULL)
    result = load_stats_pbp(tmp_path, on_error="skip")
    assert list(result.games["game_id"]) == [GAME]
    assert [p.code for p in result.problems] == ["truncated_line"]
    assert result.problems[0].source == str(tmp_path / names[0])
    expected = load_stats_pbp(PBP_DIR / f"{GAME}.csv").games
    assert np.array_equal(margin_matrix(result.games), margin_matrix(expected), equal_nan=True)


def test_a_huge_score_is_out_of_range_not_an_overflow(tmp_path: Path) -> None:
    done = []

    def huge_first_score(cells: list[str]) -> list[str]:
        if not done and cells[2] == "1" and cells[-2]:
            cells[-2] = "99999999999999999999999 - 1"
            done.append(True)
        return cells

    error = _load_error(_write(tmp_path / "huge.csv", _edited(huge_first_score)))
    assert error.code == "score_out_of_range" and error.game_id == GAME
    assert "'99999999999999999999999 - 1'" in error.problem


def test_a_truncated_gzip_says_so(tmp_path: Path) -> None:
    packed = gzip.compress(FULL)
    path = _write(tmp_path / "game.csv.gz", packed[: len(packed) // 2])
    error = _load_error(path)
    assert error.code == "truncated_file" and error.source == str(path)
    result = runner.invoke(app, ["data", "import", str(path), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "truncated_file" in result.output and "Aborted" not in result.output


def test_a_large_truncated_gzip_keeps_the_games_read_whole(tmp_path: Path) -> None:
    """A margins file cut in its second megabyte: the rows before the cut stand."""
    rows = pd.DataFrame({"game_id": [f"g{i}" for i in range(40_000)], "season": 2013})
    for column in MARGIN_COLUMNS[:25]:
        rows[column] = 0
    packed = gzip.compress(rows.to_csv(index=False).encode(), compresslevel=1)
    path = _write(tmp_path / "m.csv.gz", packed[: int(len(packed) * 0.8)])
    result = load_games(path, on_error="skip")
    assert [p.code for p in result.problems] == ["truncated_file"]
    assert 0 < len(result.games) < 40_000
    assert list(result.games["game_id"]) == [f"g{i}" for i in range(len(result.games))]


# --- bounded reading ----------------------------------------------------------------------


def test_a_game_with_too_many_rows_stops_being_read(tmp_path: Path) -> None:
    lines = _lines()
    body = "".join(lines[1:]) * 13  # 5,356 rows of one game id
    error = _load_error(_write(tmp_path / "long.csv", lines[0] + body))
    assert error.code == "too_many_rows" and error.row == 5_002


def test_an_oversized_field_is_refused_at_its_line(tmp_path: Path) -> None:
    lines = _lines()
    lines[3] = lines[3].rstrip("\n") + "x" * (2 * csv_rows.MAX_LINE_BYTES) + "\n"
    error = _load_error(_write(tmp_path / "field.csv", "".join(lines)))
    assert error.code == "line_too_long" and error.row == 4 and error.game_id == GAME


def test_a_quoted_field_spanning_lines_is_bounded(tmp_path: Path) -> None:
    lines = _lines()
    lines[3] = lines[3].rstrip("\n") + ',"' + "\n".join(["y" * 1000] * 200) + '"\n'
    error = _load_error(_write(tmp_path / "quoted.csv", "".join(lines)))
    assert error.code == "field_too_long" and error.row == 4


def test_more_games_than_the_limit_is_an_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(tables, "MAX_GAMES", 2)
    lines = _lines()
    text = lines[0] + "".join(
        line.replace(GAME, other, 1)
        for other in (GAME, "0021300458", "0021300459")
        for line in lines[1:]
    )
    error = _load_error(_write(tmp_path / "three.csv", text))
    assert error.code == "too_many_games"


def test_a_parquet_row_group_too_large_to_decompress_is_refused(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(tables, "MAX_ROW_GROUP_BYTES", 1_000)
    frame = pd.DataFrame({"game_id": ["g1"], "season": [2013], **{c: [0] for c in MARGIN_COLUMNS}})
    frame["game_id"] = "g" * 5_000
    path = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path)
    assert _load_error(path).code == "row_group_too_large"


# --- row damage: one game, reported; the others kept ---------------------------------------


def _two_games() -> str:
    lines = _lines()
    other = [line.replace(GAME, "0021300458", 1) for line in lines[1:]]
    return "".join(lines) + "".join(other)


def test_one_bad_game_in_a_file_is_skipped_and_reported_the_others_kept(tmp_path: Path) -> None:
    lines = _two_games().splitlines(keepends=True)
    # the first game's 5th row loses its last two fields (a merged or cut line)
    lines[4] = ",".join(lines[4].split(",")[:-2]) + "\n"
    path = _write(tmp_path / "two.csv", "".join(lines))
    error = _load_error(path)
    assert error.code == "wrong_field_count" and error.source == str(path)
    assert error.game_id == GAME and error.row == 5
    result = load_games(path, on_error="skip")
    assert list(result.games["game_id"]) == ["0021300458"]
    assert [(p.game_id, p.code) for p in result.problems] == [(GAME, "wrong_field_count")]
    printed = runner.invoke(app, ["data", "import", str(path), "--out", str(tmp_path / "o.csv")])
    assert printed.exit_code == 0 and "1 game(s) skipped" in printed.output
    assert f"game {GAME}, row 5" in printed.output and "wrote 1 games" in printed.output


def test_bytes_that_are_not_utf8_spoil_only_their_game(tmp_path: Path) -> None:
    data = _two_games().encode()
    position = data.index(b"Jump Ball")
    data = data[:position] + b"\xff\xfe" + data[position + 2 :]
    result = load_games(_write(tmp_path / "latin.csv", data), on_error="skip")
    assert list(result.games["game_id"]) == ["0021300458"]
    assert [p.code for p in result.problems] == ["bad_encoding"]


def test_a_game_whose_rows_come_back_later_is_refused(tmp_path: Path) -> None:
    lines = _two_games().splitlines(keepends=True)
    half = len(lines) // 4
    moved = lines[:1] + lines[half:] + lines[1:half]  # the first game's start put at the end
    result = load_games(_write(tmp_path / "split.csv", "".join(moved)), on_error="skip")
    assert list(result.games["game_id"]) == ["0021300458"]
    assert [(p.game_id, p.code) for p in result.problems] == [(GAME, "game_rows_split")]


def test_a_file_without_a_final_line_break_is_cut_off(tmp_path: Path) -> None:
    error = _load_error(_write(tmp_path / "g.csv", FULL.rstrip(b"\n")))
    assert error.code == "truncated_line" and "add one" in error.expected  # type: ignore[operator]
    assert not load_games(_write(tmp_path / "h.csv", FULL)).problems


def test_the_end_of_game_row_must_agree_with_the_scoring_rows(tmp_path: Path) -> None:
    lines = _lines()
    assert lines[-1].endswith(",97 - 94,-3\n")  # the end-of-game row
    lines[-1] = lines[-1].replace(",97 - 94,-3", ",97 - 92,-5")
    text = "".join(lines)
    error = _load_error(_write(tmp_path / "g.csv", text))
    assert error.code == "final_score_mismatch" and "97 - 92" in error.problem


def test_a_game_that_stops_after_the_first_half_is_incomplete(tmp_path: Path) -> None:
    lines = _lines()
    q2_end = next(
        i
        for i, line in enumerate(lines)
        if line.split(",")[2] == "13" and line.split(",")[4] == "2"
    )
    error = _load_error(_write(tmp_path / "half.csv", "".join(lines[: q2_end + 1])))
    assert error.code == "incomplete_game" and "ends after period 2" in error.problem


def test_repeated_header_columns_are_refused(tmp_path: Path) -> None:
    lines = _lines()
    lines[0] = lines[0].replace("SCOREMARGIN", "SCORE")
    error = _load_error(_write(tmp_path / "g.csv", "".join(lines)), format="stats-pbp")
    assert error.code == "duplicate_columns"


# --- game ids ------------------------------------------------------------------------------


HOSTILE_IDS = ["A" * 5_000, "../../etc/passwd", '=HYPERLINK("http://x.example","click")', "a b"]


def _margins_file(path: Path, ids: list[str]) -> Path:
    frame = pd.DataFrame({"game_id": ids, "season": 2013, **{c: 0 for c in MARGIN_COLUMNS[:25]}})
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("game_id", HOSTILE_IDS)
def test_hostile_game_ids_in_a_margins_file_are_refused(tmp_path: Path, game_id: str) -> None:
    path = _margins_file(tmp_path / "m.csv", [game_id, "ok-1"])
    result = load_games(path, on_error="skip")
    assert list(result.games["game_id"]) == ["ok-1"]
    [problem] = result.problems
    assert problem.code == "bad_game_id" and problem.row == 2
    assert len(str(problem)) < 400  # the id is quoted and cut, not echoed whole


def test_hostile_game_ids_in_events_and_play_by_play(tmp_path: Path) -> None:
    events = tmp_path / "e.csv"
    events.write_text(
        "game_id,season,period,elapsed_s,home,away\n../x,2013,1,700,2,0\n../x,2013,2,1400,2,3\n"
    )
    assert _load_error(events).code == "bad_game_id"
    pbp = _write(tmp_path / "p.csv", FULL.decode().replace(GAME, "my-game"))
    error = _load_error(pbp)
    assert error.code == "bad_game_id" and "10 digits" in (error.expected or "")


def test_the_feed_refuses_a_malformed_game_id() -> None:
    result = runner.invoke(app, ["feed", "../../etc/passwd"])
    assert result.exit_code == 2 and "breaks the id format" in result.output


# --- other values out of range -------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("0021300001,1e30,700,2,0", "period_out_of_range"),
        ("0021300001,1,700,99999999999999999999,0", "score_out_of_range"),
        ("0021300001,1,-5,2,0", "clock_out_of_range"),
        ("0021300001,1,1e300,2,0", "clock_out_of_range"),
    ],
)
def test_events_values_are_bounded_before_they_become_integers(
    tmp_path: Path, row: str, code: str
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f"game_id,period,elapsed_s,home,away\n{row}\n0021300001,2,1400,2,3\n")
    assert _load_error(path).code == code


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"final_home": "99999", "final_away": "90", "n_periods": "4"}, "bad_final_score"),
        ({"final_home": "101", "final_away": "90", "n_periods": "4"}, "final_score_mismatch"),
        ({"final_home": "100", "final_away": "100", "n_periods": "4"}, "final_score_mismatch"),
        ({"final_home": "110", "final_away": "100", "n_periods": "5"}, "overtime_inconsistent"),
        ({"final_home": "100", "final_away": "90", "n_periods": "2"}, "bad_n_periods"),
        ({"season": "99999"}, "bad_season"),
        ({"home_team": "=cmd|' /C calc'!A0"}, "bad_team"),
        ({"game_date": "9999-01-01"}, "bad_date"),
    ],
)
def test_margins_final_scores_and_metadata_are_checked(
    tmp_path: Path, changes: dict[str, str], code: str
) -> None:
    row = {"game_id": "g1", "season": "2013", **{c: "0" for c in MARGIN_COLUMNS}}
    row.update({f"m_{k}": "10" for k in range(25, 49)})  # regulation ends +10
    row["m_0"] = "0"
    row.update({f"m_{k}": str(min(k - 14, 10)) for k in range(15, 25)})
    row.update(changes)
    path = tmp_path / "m.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    error = _load_error(path)
    assert error.code == code, str(error)


def test_a_consistent_margins_row_passes(tmp_path: Path) -> None:
    row = {"game_id": "g1", "season": "2013", **{c: "0" for c in MARGIN_COLUMNS}}
    row.update({f"m_{k}": "10" for k in range(25, 49)})
    row.update({f"m_{k}": str(min(k - 14, 10)) for k in range(15, 25)})
    row.update({"final_home": "100", "final_away": "90", "n_periods": "4", "home_team": "BOS"})
    path = tmp_path / "m.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    assert not load_games(path).problems


@pytest.mark.parametrize(
    ("rows", "code"),
    [
        # the last scoring event 7:00 before the end of Q2: cut short
        (["1,700,2,0", "2,1020,2,3"], "incomplete_game"),
        (["1,700,2,0", "2,1400,2,3", "3,2100,4,3"], "incomplete_game"),
    ],
)
def test_events_files_show_a_cut_game(tmp_path: Path, rows: list[str], code: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "game_id,period,elapsed_s,home,away\n" + "".join(f"0021300001,{r}\n" for r in rows)
    )
    assert _load_error(path).code == code


# --- the property: any truncation is the whole game or a specific error --------------------


@pytest.fixture(scope="module")
def whole_games() -> dict[Path, pd.DataFrame | None]:
    """Each fixture's game as loaded from the complete file (None for the broken ones)."""
    out: dict[Path, pd.DataFrame | None] = {}
    for path in FIXTURES:
        try:
            out[path] = load_stats_pbp(path).games
        except DataError:
            out[path] = None
    assert sum(v is not None for v in out.values()) == len(GOOD_PBP)
    return out


def _check_truncation(
    folder: Path, fixture: Path, cut: int, whole: dict[Path, pd.DataFrame | None]
) -> None:
    data = fixture.read_bytes()[:cut]
    path = folder / f"{fixture.stem}-{cut}.csv"
    path.write_bytes(data)
    try:
        try:
            games = load_stats_pbp(path).games
        except DataError as error:
            assert error.code in TRUNCATION_CODES, str(error)
            assert error.source == str(path)
            return
        expected = whole[fixture]
        assert expected is not None, f"a broken game loaded from {cut} bytes"
        assert games.equals(expected), f"a game with other margins from {cut} bytes"
    finally:
        path.unlink()


@settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(fixture=st.sampled_from(FIXTURES), share=st.floats(0, 1))
def test_any_truncation_is_the_whole_game_or_a_specific_error(
    tmp_path: Path, whole_games: dict[Path, pd.DataFrame | None], fixture: Path, share: float
) -> None:
    size = len(fixture.read_bytes())
    _check_truncation(tmp_path, fixture, round(share * size), whole_games)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(fixture=st.sampled_from(FIXTURES), share=st.floats(0, 1))
def test_any_cut_at_a_line_break_is_the_whole_game_or_a_specific_error(
    tmp_path: Path, whole_games: dict[Path, pd.DataFrame | None], fixture: Path, share: float
) -> None:
    """Cuts at line breaks get past the cut-line check: completeness must catch them."""
    data = fixture.read_bytes()
    breaks = [m.end() for m in re.finditer(b"\n", data)]
    _check_truncation(tmp_path, fixture, breaks[round(share * (len(breaks) - 1))], whole_games)


# --- the codes are documented --------------------------------------------------------------


def test_every_error_code_is_documented_with_a_message() -> None:
    from nba_forecast.data.errors import CODES

    doc = (Path(__file__).parents[2] / "docs" / "data-import.md").read_text()
    table = doc[doc.index("## Error codes") :]
    documented = re.findall(r"^\| `([a-z_]+)` \| [^|]+ \| `[^`]+` \|$", table, re.MULTILINE)
    assert sorted(documented) == sorted(CODES)
    source = "".join(p.read_text() for p in Path(tables.__file__).parents[1].rglob("*.py"))
    assert set(CODES) <= set(re.findall(r'"([a-z]+(?:_[a-z]+)+)"', source))  # none stale
    with pytest.raises(ValueError, match="unknown DataError code"):
        DataError("no_such_code", "x")


def test_a_game_without_a_season_is_one_bad_game_named_with_its_file(tmp_path: Path) -> None:
    """It used to abort the whole file with the source shown as <input>."""
    path = tmp_path / "e.csv"
    rows = [
        f"{g},{p},{t},{h},{a}"
        for g in ("0021300001", "my-game")
        for p, t, h, a in [(1, 700, 2, 0), (2, 1400, 2, 3), (3, 2100, 4, 3), (4, 2850, 5, 3)]
    ]
    path.write_text("game_id,period,elapsed_s,home,away\n" + "\n".join(rows) + "\n")
    result = load_games(path, on_error="skip")
    assert list(result.games["game_id"]) == ["0021300001"]
    [problem] = result.problems
    assert (problem.code, problem.game_id, problem.source) == (
        "unknown_season",
        "my-game",
        str(path),
    )
    assert "<input>" not in str(problem)


def test_the_serving_api_takes_game_ids_of_the_same_format() -> None:
    from nba_forecast.serving.app import GAME_ID_PATTERN

    for good in ("0021300001", "g1", "my-game_2"):
        assert re.fullmatch(GAME_ID_PATTERN, good)
    for bad in ("-x", "_x", "=HYPERLINK(1)", "../x", "a b", "x" * 33, ""):
        assert not re.fullmatch(GAME_ID_PATTERN, bad), bad


# --- found by a hostile review --------------------------------------------------------------


def test_a_missing_scoring_row_is_never_a_game_with_other_margins(tmp_path: Path) -> None:
    """Each free throw of a real game removed in turn: the next shot then seems to add 3
    without "3PT", or an end-of-period row disagrees; never a quietly different game."""
    lines = _lines()
    whole = load_stats_pbp(PBP_DIR / f"{GAME}.csv").games
    free_throws = [i for i, line in enumerate(lines) if line.split(",")[2] == "3" and i > 0]
    assert len(free_throws) > 20
    for i in free_throws:
        path = _write(tmp_path / "r.csv", "".join(lines[:i] + lines[i + 1 :]))
        try:
            games = load_stats_pbp(path).games
        except DataError as error:
            assert error.code in {
                "score_step_inconsistent",
                "period_score_mismatch",
                "final_score_mismatch",
                "non_monotonic_score",
            }, str(error)
            continue
        assert games.equals(whole), f"line {i + 1} removed: a game with other margins"


def test_an_end_of_period_row_that_disagrees_is_reported(tmp_path: Path) -> None:
    lines = _lines()
    q2_end = next(i for i, line in enumerate(lines) if line.split(",")[:5:2] == [GAME, "13", "2"])
    cells = lines[q2_end].rstrip("\n").split(",")
    away, home = (int(v) for v in cells[-2].split(" - "))
    cells[-2] = f"{away + 1} - {home}"
    lines[q2_end] = ",".join(cells) + "\n"
    error = _load_error(_write(tmp_path / "g.csv", "".join(lines)))
    assert error.code == "period_score_mismatch" and "period 2" in error.problem


def test_full_width_digits_are_not_numbers(tmp_path: Path) -> None:
    text = FULL.decode()
    first_score = re.search(r",(\d+) - (\d+),", text)
    assert first_score is not None
    text = text.replace(first_score.group(0), ",\uff12 - 0,", 1)  # a full-width 2
    error = _load_error(_write(tmp_path / "g.csv", text))
    assert error.code == "bad_score_string"


def test_validate_prints_markup_characters_as_they_are(tmp_path: Path) -> None:
    folder = tmp_path / "[red]x"
    folder.mkdir()
    lines = _lines()
    lines[5] = lines[5].replace(",,,,", ",[/],,,", 1)
    text = "".join(lines).replace(",12:00,", ",[/],", 1)
    path = _write(folder / "[b]g.csv", text)
    done = runner.invoke(app, ["data", "validate", str(path)])
    assert done.exception is None or isinstance(done.exception, SystemExit), done.output
    assert "[red]x" in done.output.replace("\n", "")
    imported = runner.invoke(
        app, ["data", "import", str(PBP_DIR / f"{GAME}.csv"), "--out", str(folder / "[/]o.parquet")]
    )
    assert imported.exit_code == 0 and "[/]o.parquet" in imported.output


def test_game_dates_with_a_time_or_utc_offset_keep_their_date(tmp_path: Path) -> None:
    path = _margins_file(tmp_path / "m.csv", ["g1", "g2", "g3"])
    frame = pd.read_csv(path, dtype=str)
    frame["game_date"] = ["1996-11-01T00:00:00Z", "1996-11-02 19:30:00+05:00", "1996-11-03"]
    frame.to_csv(path, index=False)
    games = load_games(path).games
    assert [str(d.date()) for d in games["game_date"]] == ["1996-11-01", "1996-11-02", "1996-11-03"]


def _three_games() -> list[str]:
    rows = []
    for game in ("0021300001", "0021300002", "0021300003"):
        rows += [
            f"{game},{p},{t},{h},{a}\n"
            for p, t, h, a in [(1, 700, 2, 0), (2, 1400, 2, 3), (3, 2100, 4, 3), (4, 2850, 5, 3)]
        ]
    return ["game_id,period,elapsed_s,home,away\n", *rows]


def test_an_unclosed_quote_ends_the_file_and_says_so(tmp_path: Path) -> None:
    lines = _three_games()
    lines[5] = '"' + lines[5]  # the first row of the second game
    result = load_games(_write(tmp_path / "q.csv", "".join(lines)), on_error="skip")
    [problem] = result.problems
    assert problem.code == "bad_csv" and "the rest of the file is not read" in problem.problem
    assert problem.row == 6


def test_a_carriage_return_inside_a_line_spoils_only_its_game(tmp_path: Path) -> None:
    lines = _three_games()
    lines[6] = lines[6].replace(",1400,", ",14\r00,")
    result = load_games(_write(tmp_path / "r.csv", "".join(lines)), on_error="skip")
    assert list(result.games["game_id"]) == ["0021300001", "0021300003"]
    assert [(p.game_id, p.code, p.row) for p in result.problems] == [("0021300002", "bad_csv", 7)]


def test_a_bomb_of_line_breaks_stops_early(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress(b"game_id,season,m_0\n" + b"\n" * 300_000))
    error = _load_error(path)
    assert error.code == "too_many_blank_lines"


def test_a_parquet_with_too_many_rows_is_refused_before_decoding(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(tables, "MAX_GAMES", 10)
    frame = pd.DataFrame(
        {
            "game_id": [f"g{i}" for i in range(11)],
            "season": 2013,
            **{c: 0 for c in MARGIN_COLUMNS[:25]},
        }
    )
    path = tmp_path / "m.parquet"
    frame.to_parquet(path)
    error = _load_error(path)
    assert error.code == "too_many_games" and "11 rows" in error.problem


def test_validate_lists_200_and_reports_all(tmp_path: Path) -> None:
    path = _margins_file(tmp_path / "m.csv", [f"=bad{i}" for i in range(250)] + ["ok"])
    report = tmp_path / "problems.csv"
    done = runner.invoke(app, ["data", "validate", str(path), "--report", str(report)])
    assert done.exit_code == 1
    assert "50 more not shown; by code: bad_game_id 250" in done.output
    written = pd.read_csv(report)
    assert len(written) == 250 and set(written["code"]) == {"bad_game_id"}
    assert list(written.columns) == ["file", "game_id", "row", "code", "problem", "expected"]


def test_a_header_only_margins_file_is_empty(tmp_path: Path) -> None:
    path = _margins_file(tmp_path / "m.csv", [])
    assert _load_error(path).code == "empty_file"


def test_the_tool_reads_its_own_output(tmp_path: Path) -> None:
    """An id with an unknown type digit is not the league's: a margins id of its own, whose
    season type is 'regular', and the written file validates."""
    path = _margins_file(tmp_path / "m.csv", ["0091300457"])
    out = tmp_path / "o.parquet"
    assert runner.invoke(app, ["data", "import", str(path), "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["data", "validate", str(out)]).exit_code == 0
    assert out.stat().st_mode & 0o044  # readable by others, as open() makes files
    pbp = _write(tmp_path / "p.csv", FULL.decode().replace(GAME, "0091300457"))
    assert _load_error(pbp).code == "bad_game_id"


def test_small_things(tmp_path: Path) -> None:
    # a parquet file named .csv is read as Parquet; as events it is refused clearly
    parquet_csv = tmp_path / "m.csv"
    pd.read_csv(_margins_file(tmp_path / "x.csv", ["g1"])).to_parquet(parquet_csv)
    assert list(load_games(parquet_csv).games["game_id"]) == ["g1"]
    error = _load_error(parquet_csv, format="events")
    assert error.code == "unknown_format" and "Parquet" in error.problem
    # an integer date in Parquet is not 1970-01-01
    frame = pd.read_parquet(parquet_csv).assign(game_date=1)
    frame.to_parquet(tmp_path / "d.parquet")
    assert _load_error(tmp_path / "d.parquet").code == "bad_date"
    # a header of 5,000 names is not echoed whole
    wide = _write(tmp_path / "w.csv", ",".join(f"c{i}" * 50 for i in range(5_000)) + "\n1\n")
    assert len(str(_load_error(wide))) < 1_000
    # a FIFO in a directory is not read (it would block)
    import os

    folder = tmp_path / "dir"
    folder.mkdir()
    os.mkfifo(folder / "pipe.csv")
    _write(folder / "good.csv", FULL)
    assert list(load_stats_pbp(folder).games["game_id"]) == [GAME]
    # a game's rows twice in a row
    twice = FULL.decode() + "".join(_lines()[1:])
    assert _load_error(_write(tmp_path / "t.csv", twice)).code == "duplicate_game_id"
    # a tiny cut gzip says where
    packed = gzip.compress(FULL)
    error = _load_error(_write(tmp_path / "c.csv.gz", packed[:40]))
    assert error.code == "truncated_file" and "line 0" not in error.problem


def test_a_bad_byte_in_a_game_id_spoils_only_its_game(tmp_path: Path) -> None:
    data = _two_games().encode()
    fourth_line = [m.end() for m in re.finditer(b"\n", data)][2]
    data = data[:fourth_line] + b"\x96" + data[fourth_line + 1 :]  # the row's id's first digit
    result = load_games(_write(tmp_path / "g.csv", data), on_error="skip")
    assert list(result.games["game_id"]) == ["0021300458"]
    assert [(p.game_id, p.code, p.row) for p in result.problems] == [(GAME, "bad_encoding", 4)]


def test_a_score_written_the_wrong_way_round_is_refused(tmp_path: Path) -> None:
    """The team whose score rises must be the side whose description holds the shot."""
    lines = _lines()
    i = next(
        i
        for i, line in enumerate(lines)
        if line.split(",")[2] == "1"
        and re.search(r",(\d+) - (\d+),", line)
        and len(set(re.search(r",(\d+) - (\d+),", line).groups())) == 2  # type: ignore[union-attr]
    )
    away, home = re.search(r",(\d+) - (\d+),", lines[i]).groups()  # type: ignore[union-attr]
    lines[i] = lines[i].replace(f",{away} - {home},", f",{home} - {away},", 1)
    error = _load_error(_write(tmp_path / "g.csv", "".join(lines)))
    assert error.code in {"score_step_inconsistent", "non_monotonic_score"}


def test_many_damaged_rows_cost_time_in_proportion(tmp_path: Path) -> None:
    """4,000 rows with a bad byte each: every one reported, and every row's check stays
    cheap (the damage was kept in frame.attrs, deep-copied by each pandas operation)."""
    ids = [f"g{i}" for i in range(4_000)]
    path = _margins_file(tmp_path / "m.csv", ids)
    data = path.read_bytes().replace(b",2013,", b",2013\xff,")
    result = load_games(_write(tmp_path / "bad.csv", data), on_error="skip")
    assert len(result.problems) == 4_000 and {p.code for p in result.problems} == {"bad_encoding"}


def test_a_fifo_given_as_the_file_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.csv")
    assert _load_error(tmp_path / "pipe.csv", format="margins").code == "not_a_file"
