"""The data CLI, through typer's runner: happy paths and bad input with exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.data.loaders import load_margins
from tests.conftest import GOOD_PBP, PBP_DIR

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_stats_on_shipped_data_prints_seasons_and_persistence() -> None:
    result = run("data", "stats")
    assert result.exit_code == 0, result.output
    assert "22,387" in result.output
    assert "2013-14" in result.output and "4.551" in result.output  # persistence MAE
    assert "5.519" in result.output  # SD(m_24 - m_18), all games


def test_validate_clean_and_bad(tmp_path: Path) -> None:
    good = run("data", "validate", str(PBP_DIR / "0021300001.csv"))
    assert good.exit_code == 0 and "all valid" in good.output
    bad = run("data", "validate", str(PBP_DIR))
    assert bad.exit_code == 1
    assert "0020100210" in bad.output and "score_step_inconsistent" in bad.output
    assert "0020100531" in bad.output and "non_monotonic_score" in bad.output


def test_import_stats_pbp_fills_teams_from_shipped_games(tmp_path: Path) -> None:
    out = tmp_path / "games.parquet"
    result = run("data", "import", str(PBP_DIR), "--format", "stats-pbp", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2 game(s) skipped" in result.output and "wrote 7 games" in result.output
    games = load_margins(out).games
    assert sorted(games["game_id"]) == GOOD_PBP
    assert games["home_team"].notna().all()


def test_import_strict_writes_nothing_when_a_game_is_bad(tmp_path: Path) -> None:
    out = tmp_path / "games.parquet"
    result = run("data", "import", str(PBP_DIR), "--out", str(out), "--strict")
    assert result.exit_code == 1 and "nothing written" in result.output
    assert not out.exists()


def test_import_events_and_margins_formats(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text(
        "game_id,period,clock,home,away\n0021300001,1,11:00,2,0\n0021300001,2,0:00,2,3\n"
    )
    first = tmp_path / "first.csv.gz"
    result = run("data", "import", str(events), "--format", "events", "--out", str(first))
    assert result.exit_code == 0, result.output
    again = tmp_path / "again.parquet"
    result = run("data", "import", str(first), "--format", "margins", "--out", str(again))
    assert result.exit_code == 0, result.output
    games = load_margins(again).games
    assert games.loc[0, "m_24"] == -1 and pd.isna(games.loc[0, "m_48"])
    stats = run("data", "stats", str(again))
    assert stats.exit_code == 0 and "2013-14" in stats.output


def test_simulate_writes_games_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "sim.parquet"
    result = run(
        "data",
        "simulate",
        "--games",
        "500",
        "--seed",
        "3",
        "--out",
        str(out),
        "--drift",
        "pace=1:1.1",
    )
    assert result.exit_code == 0, result.output
    assert "wrote 500 simulated games" in result.output
    assert len(load_margins(out).games) == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "stats", "missing.csv"], "no such file"),
        (["data", "stats", "--format", "xml", "x.csv"], "unknown --format"),
        (["data", "validate", "missing.csv"], "no such file"),
        (
            [
                "data",
                "simulate",
                "--games",
                "10",
                "--drift",
                "speed=1:2",
                "--out",
                "{tmp}/s.parquet",
            ],
            "bad drift term",
        ),
        (["data", "simulate", "--games", "10", "--out", "{tmp}/s.txt"], "unknown output type"),
        (["data", "import", "{tmp}/header.csv", "--out", "{tmp}/o.parquet"], "unknown_format"),
        (["data", "import", "{tmp}/empty_dir", "--out", "{tmp}/o.parquet"], "no .csv"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "header.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty_dir").mkdir()
    result = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_simulate_rejects_zero_games() -> None:
    result = run("data", "simulate", "--games", "0", "--out", "x.parquet")
    assert result.exit_code == 2 and "greater than or equal to 1" in result.output


def test_import_of_only_bad_games_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "pbp"
    source.mkdir()
    shutil.copy(PBP_DIR / "0020100210.csv", source)
    out = tmp_path / "o.parquet"
    result = run("data", "import", str(source), "--out", str(out))
    assert result.exit_code == 1 and "no valid games" in result.output
    assert not out.exists()


def test_db_upgrade_refused_by_a_migration_says_so_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from nba_forecast.cli import app
    from tests.integration.test_prediction_log import old_log_serving_one_game_twice

    old_log_serving_one_game_twice(tmp_path / "old.db").engine.dispose()
    result = CliRunner().invoke(
        app, ["db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'old.db'}"]
    )
    assert result.exit_code == 2, result.output
    assert "more than one served forecast" in result.output and "Traceback" not in result.output
