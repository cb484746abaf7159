"""One configuration for every command (issue 16): the same options everywhere, the
environment behind them, a config file with profiles, `config show` with sources and masked
secrets, `--version`; no silent creation of a database or registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nba_forecast import __version__
from nba_forecast.cli import app
from nba_forecast.cli.options import COMMON_OPTIONS
from nba_forecast.settings import ConfigError, ConfigFile, Settings, mask

SETTINGS_ENV = [
    "NBA_FORECAST_HOME",
    "NBA_FORECAST_DATABASE_URL",
    "NBA_FORECAST_REGISTRY_URL",
    "NBA_FORECAST_GITOPS_REPO",
    "NBA_FORECAST_GITOPS_URL",
    "NBA_FORECAST_CONFIG",
    "NBA_FORECAST_PROFILE",
    "NBA_FORECAST_API_TOKEN",
    "NBA_FORECAST_S3_ENDPOINT_URL",
]
CONFIG = """
profile = "local"

[profiles.local]
home = "{home}"

[profiles.staging]
database_url = "postgresql://forecast:hunter2@db.staging:5432/forecast"
registry_url = "s3://nba-staging/registry"
gitops_url = "https://git.example.com/ml/gitops.git"
api_token = "0123456789abcdef0123"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # no ~/.nba-forecast/config.toml
    monkeypatch.setattr("nba_forecast.settings.DEFAULT_CONFIG_FILE", tmp_path / "none.toml")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(home=tmp_path / "local-home"))
    return path


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env=env)


def all_commands() -> list[list[str]]:
    """Every leaf command's path, from the app itself (a new command cannot be missed)."""
    import typer.main

    group = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command, path):  # type: ignore[no-untyped-def]
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, [*path, name])
        else:
            paths.append(path)

    walk(group, [])
    return paths


def test_every_command_takes_the_same_deployment_options() -> None:
    commands = all_commands()
    assert len(commands) > 25
    for path in commands:
        result = run(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        for name in COMMON_OPTIONS:
            flag = "--" + name.replace("_", "-")
            assert flag in result.output, (path, flag)
        assert "--verbose" in result.output


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"nba-forecast {__version__}"


def test_config_show_sources_and_masked_secrets(config: Path) -> None:
    result = run(
        "config",
        "show",
        "--config",
        str(config),
        "--profile",
        "staging",
        "--registry-url",
        "file:///srv/registry",
        env={"NBA_FORECAST_ENVIRONMENT": "staging", "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    lines = {
        line.split(" = ")[0].strip(): line for line in result.output.splitlines() if " = " in line
    }
    assert (
        "option --registry-url" in lines["registry_url"]
        and "/srv/registry" in lines["registry_url"]
    )
    assert "env NBA_FORECAST_ENVIRONMENT" in lines["environment"]
    assert "[profiles.staging]" in lines["database_url"]
    assert "forecast:****@db.staging" in lines["database_url"]
    assert "[profiles.staging]" in lines["gitops_url"]
    assert "****" in lines["api_token"]
    assert "hunter2" not in result.output and "0123456789abcdef0123" not in result.output
    assert "default" in lines["s3_endpoint_url"]


def test_profile_from_the_file_default_and_option_over_env_over_file(
    config: Path, tmp_path: Path
) -> None:
    env = {"NBA_FORECAST_CONFIG": str(config)}
    os.environ.update(env)
    try:
        assert Settings().home == tmp_path / "local-home"  # profile = "local"
        os.environ["NBA_FORECAST_PROFILE"] = "staging"
        assert Settings().registry_url == "s3://nba-staging/registry"
        os.environ["NBA_FORECAST_REGISTRY_URL"] = "file:///from/env"
        assert Settings().registry_url == "file:///from/env"  # env over file
        assert Settings().gitops_repo == "https://git.example.com/ml/gitops.git"
    finally:
        for name in ("NBA_FORECAST_CONFIG", "NBA_FORECAST_PROFILE", "NBA_FORECAST_REGISTRY_URL"):
            os.environ.pop(name, None)


def test_an_option_is_seen_by_the_command_and_then_restored(tmp_path: Path) -> None:
    result = run("config", "show", "--home", str(tmp_path / "h"), env={"COLUMNS": "200"})
    assert str(tmp_path / "h" / "predictions.db") in result.output
    assert "NBA_FORECAST_HOME" not in os.environ


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("[profiles.local]\nhome = 1\n[profiles.x]\n", ["--profile", "nope"], "no profile 'nope'"),
        (
            "[profiles.local]\ndatabse_url = 'x'\n",
            ["--profile", "local"],
            "unknown setting(s) databse_url",
        ),
        ("database_url = 'x'\n", [], "unknown top-level key(s) database_url"),
        ("profile = [\n", [], "not valid TOML"),
        ("[profiles.a]\n[profiles.b]\n", [], "none is selected"),
        ("profile = 'a'\n[profiles.a]\nlog_level = 'LOUD'\n", [], "bad setting log_level"),
    ],
)
def test_bad_config_files_are_one_line_errors(
    tmp_path: Path, text: str, args: list[str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run("collect", "--config", str(path), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_missing_config_file_and_profile_without_a_file(tmp_path: Path) -> None:
    result = run("registry", "list", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2 and "does not exist" in result.output
    result = run("registry", "list", "--profile", "staging")
    assert result.exit_code == 2 and "no config file" in result.output


def test_config_file_lookup_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        (tmp_path / "c.toml").write_text("=")
        ConfigFile.read(tmp_path / "c.toml")


def test_mask() -> None:
    assert mask("database_url", "postgresql://u:pw@h:5432/db") == "postgresql://u:****@h:5432/db"
    assert mask("database_url", "sqlite:////x/y.db") == "sqlite:////x/y.db"
    assert mask("api_token", "abc") == "****"
    assert mask("registry_url", None) == "-"


# -- no silent creation ------------------------------------------------------------------
def test_a_typo_in_the_database_path_is_an_error_not_an_empty_log(tmp_path: Path) -> None:
    real = tmp_path / "predictions.db"
    assert run("db", "upgrade", "--create", "--database-url", f"sqlite:///{real}").exit_code == 0
    typo = tmp_path / "predictons.db"
    result = run("collect", "--database-url", f"sqlite:///{typo}", "--home", str(tmp_path / "h"))
    assert result.exit_code == 2, result.output
    assert "no database at" in result.output and "db upgrade --create" in result.output
    assert not typo.exists()


def test_db_upgrade_does_not_create_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.db"
    result = run("db", "upgrade", "--database-url", f"sqlite:///{target}")
    assert result.exit_code == 2 and "no database at" in result.output
    assert not target.parent.exists()
    created = run("db", "upgrade", "--create", "--database-url", f"sqlite:///{target}")
    assert created.exit_code == 0 and "schema up to date" in created.output
    assert target.is_file()


def test_a_registry_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = (tmp_path / "registy").as_uri()
    result = run("registry", "list", "--registry-url", missing)
    assert result.exit_code == 2 and "no registry at" in result.output
    assert not (tmp_path / "registy").exists()


def test_the_embedded_defaults_are_made_on_first_use(tmp_path: Path) -> None:
    """Trying it on one machine needs no setup: the defaults under home are created."""
    result = run("collect", "--home", str(tmp_path / "h"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "h" / "predictions.db").is_file()


# -- small frictions -------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["collect"], ["monitor"], ["rollout", "status"]])
def test_as_of_now_works(tmp_path: Path, command: list[str]) -> None:
    result = run(*command, "--as-of", "now", "--home", str(tmp_path / "h"))
    assert "bad --as-of" not in result.output
    assert result.exit_code == 0, result.output


def test_schedules_list_outside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("schedules", "list")
    assert result.exit_code == 0, result.output
    assert "retrain" in result.output and "update-dejavu" in result.output


def test_schedules_list_bad_file(tmp_path: Path) -> None:
    result = run("schedules", "list", "--file", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2 and "cannot read the schedules" in result.output


@pytest.mark.parametrize("name", ["rows.xlsx", "rows", "rows.txt"])
def test_collect_refuses_an_unknown_out_format_before_any_work(tmp_path: Path, name: str) -> None:
    result = run("collect", "--out", str(tmp_path / name), "--home", str(tmp_path / "h"))
    assert result.exit_code == 2 and "unknown format" in result.output, result.output
    assert not (tmp_path / name).exists()
    assert not (tmp_path / "h").exists()  # refused before opening anything


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_collect_writes_the_format_of_its_extension(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    out = tmp_path / f"rows{suffix}"
    result = run("collect", "--out", str(out), "--home", str(tmp_path / "h"))
    assert result.exit_code == 0, result.output
    reader = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".json": pd.read_json}[suffix]
    if suffix == ".csv":
        assert out.read_text().strip() == "" or reader(out) is not None
    else:
        assert reader(out) is not None


@pytest.mark.parametrize("command", [["replay"], ["data", "stats"], ["evaluate"]])
def test_a_deployment_option_on_a_command_that_uses_none_is_an_error(command: list[str]) -> None:
    result = run(*command, "--database-url", "sqlite:////tmp/x.db")
    assert result.exit_code == 2
    assert "--database-url: this command does not use a deployment" in result.output


# -- what the hostile review found ----------------------------------------------------------
@pytest.mark.postgres
def test_a_database_without_the_log_is_an_error_and_db_upgrade_masks_passwords(
    pg_schema_url: str, tmp_path: Path
) -> None:
    """An empty (or another application's) database is not a prediction log: reading it
    is an error, not "0 rows" with our tables quietly added; `db upgrade` adds them."""
    with_password = pg_schema_url.replace("postgres@", "postgres:hunter2secret@", 1)
    home = ["--home", str(tmp_path / "h")]
    result = run("collect", "--database-url", with_password, *home)
    assert result.exit_code == 2, result.output
    assert "holds no prediction log" in result.output and "db upgrade" in result.output
    assert "hunter2secret" not in result.output
    upgraded = run("db", "upgrade", "--database-url", with_password, *home)
    assert upgraded.exit_code == 0, upgraded.output
    assert "schema up to date" in upgraded.output and "hunter2secret" not in upgraded.output
    assert "postgres:****@" in upgraded.output
    assert run("collect", "--database-url", with_password, *home).exit_code == 0


def test_another_applications_sqlite_file_is_not_a_log(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER)")
    result = run("monitor", "--database-url", f"sqlite:///{other}", "--home", str(tmp_path / "h"))
    assert result.exit_code == 2 and "holds no prediction log" in result.output
    with sqlite3.connect(other) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}


def test_a_folder_that_is_not_a_registry_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "predictions.db").write_text("")
    for command in (["registry", "list"], ["registry", "card", "production"]):
        result = run(*command, "--registry-url", tmp_path.as_uri())
        assert result.exit_code == 2 and "is not a model registry" in result.output
    assert not (tmp_path / "versions").exists()


def test_an_unreachable_s3_registry_is_one_line(tmp_path: Path) -> None:
    result = run(
        "registry",
        "list",
        "--registry-url",
        "s3://bucket/prefix",
        "--s3-endpoint-url",
        "http://127.0.0.1:1",
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_MAX_ATTEMPTS": "1"},
    )
    assert result.exit_code == 2, result.output
    assert "cannot reach the registry at s3://bucket/prefix" in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) <= 3


def test_a_gitops_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    result = run(
        "roll-forward",
        "production",
        "--reason",
        "x",
        "--gitops-url",
        str(tmp_path / "gitpos"),
        "--home",
        str(tmp_path / "h"),
    )
    assert result.exit_code == 2 and "no GitOps repository at" in result.output
    assert not (tmp_path / "gitpos").exists()


def test_options_before_the_subcommand(tmp_path: Path, config: Path) -> None:
    result = run("--config", str(config), "--profile", "staging", "config", "show")
    assert result.exit_code == 0, result.output
    assert "option --profile" not in result.output  # the profile is not a setting
    assert "[profiles.staging]" in result.output
    result = run("--home", str(tmp_path / "h2"), "config", "show")
    assert "home            = " + str(tmp_path / "h2") in result.output
    assert "[option --home]" in result.output
    missing = run("--database-url", f"sqlite:///{tmp_path / 'nope.db'}", "collect")
    assert missing.exit_code == 2 and "no database at" in missing.output
    assert "NBA_FORECAST_DATABASE_URL" not in os.environ
