"""Model cards on a real registry built by the lifecycle steps (bootstrap, retrain with its
validation, analog update) on real games: every version records its metrics, data window,
parent and maker; the card (Markdown and HTML from one content) shows them, says "not
recorded" for what an old manifest lacks, and escapes what people typed."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nba_forecast.cli import app
from nba_forecast.lifecycle.bootstrap import bootstrap
from nba_forecast.lifecycle.context import GameSource
from nba_forecast.lifecycle.retrain import retrain
from nba_forecast.lifecycle.update_dejavu import update_dejavu
from nba_forecast.lifecycle.validate import VALIDATION_REPORT, validate_candidate
from nba_forecast.model_card import build_card
from nba_forecast.storage.registry import Registry, RegistryError
from tests.integration.test_lifecycle_steps import deployment

AS_OF = dt.datetime(2014, 3, 1, 9, tzinfo=dt.UTC)
runner = CliRunner()


@dataclass(frozen=True)
class Lifecycle:
    registry: Registry
    store: str  # the registry's URL, for the CLI
    bootstrapped: str
    retrained: str
    updated: str


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory, shipped_games: pd.DataFrame) -> Lifecycle:
    """Bootstrap through 2012, a retrain validated against it, and an analog update."""
    tmp = tmp_path_factory.mktemp("cards")
    ctx = deployment(tmp)
    ctx.games = GameSource.of(
        shipped_games[shipped_games["season"].between(2010, 2013)].reset_index(drop=True)
    )
    first = bootstrap(ctx, AS_OF, through_season=2012).version
    retrained = retrain(ctx, AS_OF, force=True).version
    assert first is not None and retrained is not None
    assert validate_candidate(ctx, AS_OF, candidate=retrained).version == retrained
    updated = update_dejavu(ctx, dt.datetime(2013, 12, 1, tzinfo=dt.UTC)).version
    assert updated is not None
    return Lifecycle(ctx.registry, (tmp / "registry").as_uri(), first, retrained, updated)


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_a_bootstrapped_version_records_held_out_metrics_window_and_maker(
    lifecycle: Lifecycle,
) -> None:
    manifest = lifecycle.registry.manifest(lifecycle.bootstrapped)
    held = manifest.metrics["held_out"]
    assert held["games"] == 1200 and held["from"] <= held["to"] == manifest.trained_to
    for name in ("model", "persistence"):
        assert held[name]["n"] == 1200
        assert {"mae", "coverage", "mean_width", "winkler"} <= set(held[name])
    assert held["model"]["mae"] < held["persistence"]["mae"]
    window = manifest.data_window
    assert window["trained_from"] == "2010-10-26" and window["trained_to"] == "2013-04-18"
    assert window["games"] > 3000
    assert manifest.made_by == "bootstrap" and manifest.parent is None


def test_a_retrained_version_records_its_parent_window_and_validation(
    lifecycle: Lifecycle,
) -> None:
    registry = lifecycle.registry
    manifest = registry.manifest(lifecycle.retrained)
    assert manifest.parent == lifecycle.bootstrapped and manifest.made_by == "retrain"
    assert manifest.data_window["trained_from"] == "2010-10-26"
    assert manifest.trained_to > registry.manifest(lifecycle.bootstrapped).trained_to
    assert manifest.metrics["held_out"]["model"]["mae"] > 0
    report = registry.report(lifecycle.retrained, VALIDATION_REPORT)
    assert report is not None
    assert report["champion"] == lifecycle.bootstrapped
    assert report["candidate"] == lifecycle.retrained
    assert report["at"] == AS_OF.isoformat() and report["n"] > 200
    assert [gate["name"] for gate in report["gates"]] == [
        "point forecasts",
        "coverage",
        "mean width",
        "Winkler score",
    ]
    assert all(isinstance(gate["passed"], bool) and gate["rule"] for gate in report["gates"])
    assert registry.report(lifecycle.bootstrapped, VALIDATION_REPORT) is None


def test_an_analog_update_keeps_its_parents_training_window(lifecycle: Lifecycle) -> None:
    registry = lifecycle.registry
    manifest = registry.manifest(lifecycle.updated)
    parent = registry.manifest(lifecycle.bootstrapped)
    assert manifest.parent == lifecycle.bootstrapped and manifest.made_by == "update_dejavu"
    assert manifest.trained_to == parent.trained_to  # "never trained" would follow otherwise
    assert manifest.data_window["trained_from"] == parent.data_window["trained_from"]
    assert manifest.data_window["analogs_to"] == "2013-11-30"
    assert manifest.metrics["games_added"] > 0 and "dejavu" in manifest.metrics["weights"]


def test_the_card_shows_data_lineage_metrics_gates_interval_and_use(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    manifest = lifecycle.registry.manifest(lifecycle.retrained)
    report = lifecycle.registry.report(lifecycle.retrained, VALIDATION_REPORT)
    assert report is not None
    held = manifest.metrics["held_out"]
    expected = [
        lifecycle.retrained,
        "HalftimeEnsemble",
        "LSTMForecaster",
        "2010-10-26",
        manifest.trained_to,
        str(manifest.data_window["games"]),
        lifecycle.bootstrapped,
        "made by bootstrap",
        "retrain: every component refitted",
        f"{held['model']['mae']:.3f}",
        f"{held['persistence']['mae']:.3f}",
        f"{report['metrics']['candidate']['mae']:.3f}",
        f"{report['metrics']['champion']['mae']:.3f}",
        "persistence (baseline)",
        "Winkler score",
        "at most 1.05x the champion",
        "95%",
        "1200 games",
        "Not betting advice",
    ]
    for suffix in ("md", "html"):
        out = tmp_path / f"card.{suffix}"
        result = run(
            "registry",
            "card",
            lifecycle.retrained,
            "--out",
            str(out),
            "--registry-url",
            lifecycle.store,
        )
        assert result.exit_code == 0, result.output
        text = out.read_text()
        missing = [item for item in expected if item not in text]
        assert not missing, (suffix, missing)
        assert (
            text.count("| pass |" if suffix == "md" else "<td>pass</td>")
            + text.count("| fail |" if suffix == "md" else "<td>fail</td>")
            == 4
        )
    page = (tmp_path / "card.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|src=|href=|url\(", page)  # one file, nothing fetched


def test_the_card_goes_to_stdout_as_markdown_by_alias(lifecycle: Lifecycle) -> None:
    result = run("registry", "card", "production", "--registry-url", lifecycle.store)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"# Model card: version {lifecycle.bootstrapped}\n")
    assert "- **made by**: bootstrap" in result.output
    html = run(
        "registry", "card", "candidate", "--format", "html", "--registry-url", lifecycle.store
    )
    assert html.exit_code == 0 and f"version {lifecycle.updated}</h1>" in html.output
    assert "analog games added" in html.output


def test_an_old_manifest_gets_a_card_that_says_what_is_not_recorded(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    """A version as older code registered it: no metrics, window, maker or report."""
    registry = Registry.open((tmp_path / "old").as_uri())
    model = registry.register(
        _model_dir(lifecycle.registry, lifecycle.bootstrapped, tmp_path)
    ).version
    old = json.loads(registry.store.get(f"versions/{model}/manifest.json"))
    for key in ("made_by", "data_window", "metrics"):
        old.pop(key)
    registry.store.put(f"versions/{model}/manifest.json", json.dumps(old).encode())
    card = build_card(registry, model).to_markdown()
    for line in (
        "- **trained from**: not recorded",
        "- **trained to**: not recorded",
        "- **made by**: not recorded",
        "Held-out metrics: not recorded",
        "Validation report: not recorded",
    ):
        assert line in card, line
    assert "- **level**: 95%" in card  # what the files themselves say is still shown


def _model_dir(registry: Registry, version: str, tmp_path: Path) -> Path:
    return registry.pull(version, tmp_path / "pulled")


def test_what_people_typed_is_escaped(lifecycle: Lifecycle, tmp_path: Path) -> None:
    registry = Registry.open((tmp_path / "hostile").as_uri())
    model = registry.register(
        _model_dir(lifecycle.registry, lifecycle.bootstrapped, tmp_path),
        metrics={"note": "<img src=x onerror=alert(1)>"},
    ).version
    registry.promote("production", model, reason="<script>alert(1)</script> | **bold** [x](y)")
    card = build_card(registry, "production")
    page = card.to_html()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | **bold**" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    markdown = card.to_markdown()
    assert r"\<script\>alert(1)\</script\> \| \*\*bold\*\* \[x\](y)" in markdown
    assert r"\<img src=x onerror=alert(1)\>" in markdown
    assert not re.search(r"(?<!\\)[<>]", markdown)  # no tag a renderer would take as HTML


def test_a_recalibrated_version_says_why_and_on_what(lifecycle: Lifecycle, tmp_path: Path) -> None:
    registry = Registry.open((tmp_path / "recal").as_uri())
    model = registry.register(
        _model_dir(lifecycle.registry, lifecycle.bootstrapped, tmp_path),
        data_window={
            "trained_to": "2013-04-18",
            "recalibrated_from": "2014-01-01T09:00:00+00:00",
            "recalibrated_to": "2014-02-01T09:00:00+00:00",
        },
        metrics={"calibration_games": 150, "miss_rate_before": 0.12},
        made_by="recalibrate",
    ).version
    card = build_card(registry, model).to_markdown()
    assert "150 served outcomes missed at 12.0% before" in card
    assert "served outcomes 2014-01-01T09:00:00+00:00 to 2014-02-01T09:00:00+00:00" in card
    assert "Held-out metrics: not recorded (a recalibration changes only the interval" in card


def test_a_hand_registered_directory_gets_a_card(tmp_path: Path) -> None:
    """Any directory with any JSON metrics: the card shows them and what it cannot know."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "ensemble.json").write_text('["not", "an", "ensemble"]')
    metrics = tmp_path / "metrics.json"
    metrics.write_text('[1, "<b>x</b>"]')
    store = (tmp_path / "reg").as_uri()
    registered = run(
        "registry",
        "register",
        str(model),
        "--metrics",
        str(metrics),
        "--registry-url",
        store,
        "--create",
    )
    assert registered.exit_code == 0, registered.output
    version = registered.output.split()[1]
    result = run("registry", "card", version, "--format", "html", "--registry-url", store)
    assert result.exit_code == 0, result.output
    assert "Class and components: not recorded" in result.output
    assert "[1, &quot;&lt;b&gt;x&lt;/b&gt;&quot;]" in result.output
    assert "<dt>level</dt><dd>not recorded</dd>" in result.output


def test_reports_belong_to_existing_versions(lifecycle: Lifecycle) -> None:
    registry = lifecycle.registry
    with pytest.raises(RegistryError, match="no version 0123456789abcdef"):
        registry.attach_report("0123456789abcdef", "validation", {})
    with pytest.raises(RegistryError, match="not a version id"):
        registry.report("../../etc", "validation")
    with pytest.raises(RegistryError, match="has no file nope"):
        registry.file(lifecycle.bootstrapped, "nope.json")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no alias or version 'nope'"),
        (["0123456789abcdef"], "no version 0123456789abcdef"),
        (["production", "--out", "{tmp}/card.txt"], "unknown card extension '.txt'"),
        (["production", "--out", "{tmp}/card"], "unknown card extension '(none)'"),
        (["production", "--format", "pdf"], "unknown card format 'pdf'"),
        (["production", "--out", "{tmp}/missing/card.md"], "cannot write"),
    ],
)
def test_card_bad_input_is_one_line(
    lifecycle: Lifecycle, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run("registry", "card", *args, "--registry-url", lifecycle.store)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_card_format_and_file_name_must_agree(tmp_path: Path) -> None:
    from nba_forecast.model_card import card_format

    with pytest.raises(ValueError, match=r"--format md contradicts the \.html file name"):
        card_format(".html", "md")
    assert card_format("", "html") == "html" and card_format(".htm") == "html"
    folder = tmp_path / "cards"
    folder.mkdir()
    (tmp_path / "reg").mkdir()
    result = run("registry", "card", "production", "--out", str(folder), "--registry-url",
                 (tmp_path / "reg").as_uri())  # fmt: skip
    assert result.exit_code == 2 and "is a folder" in result.output
