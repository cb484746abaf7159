"""Model cards: what one registered version is, what it was trained on, how it was made and
measured, and what it is for, as Markdown or as a self-contained HTML page.

The card is built once (``build_card``) as plain sections of facts, tables and notes, and
both formats render that same content; every string is escaped for its format (promotion
reasons and hand-registered metrics are free text). What the registry does not know, as
of versions registered by older code, reads "not recorded"."""

from __future__ import annotations

import dataclasses
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nba_forecast.evaluation.paired_tests import p_text
from nba_forecast.lifecycle.validate import VALIDATION_REPORT
from nba_forecast.storage.registry import Registry, RegistryError, VersionManifest

NOT_RECORDED = "not recorded"
FORMATS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}
MADE_BY = {
    "bootstrap": "bootstrap: trained on the known games; the first production version",
    "retrain": "retrain: every component refitted on the games before a holdout, the LSTM "
    "warm-started from its parent's",
    "update_dejavu": "update_dejavu: its parent, with the games finished since added to "
    "Dejavu's analog database (Dejavu's weight refitted when enough served games exist)",
    "recalibrate": "recalibrate: its parent, with the interval recalibrated on recent "
    "served outcomes (point forecasts unchanged)",
}
INTENDED_USE = [
    "Forecasts the NBA halftime score margin (home minus away) at 6:00 left in the second "
    "quarter, from the margin minute by minute until then and the teams' pre-game strength, "
    "with a conformal prediction interval.",
    "Trained and measured on the NBA games of its data window (regular seasons, and "
    "playoffs where the data has them); other leagues, rule changes and eras were not "
    "measured.",
    "For analysis, broadcasts and product features. Not betting advice: the interval is a "
    "long-run coverage rate over many games, not a guarantee for any one game.",
    "Forecasts for a team it has not seen, or after rule or roster shocks, are less "
    "reliable until the lifecycle retrains and recalibrates it.",
]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


@dataclass(frozen=True)
class Section:
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelCard:
    version: str
    sections: list[Section]

    @property
    def title(self) -> str:
        return f"Model card: version {self.version}"

    def render(self, fmt: str) -> str:
        if fmt not in ("md", "html"):
            raise ValueError(f"unknown card format {fmt!r}: md or html")
        return self.to_markdown() if fmt == "md" else self.to_html()

    def to_markdown(self) -> str:
        lines = [f"# {_md(self.title)}", ""]
        for section in self.sections:
            lines += [f"## {_md(section.title)}", ""]
            lines += [f"- **{_md(k)}**: {_md(v)}" for k, v in section.facts]
            lines += [""] if section.facts else []
            for table in section.tables:
                lines.append("| " + " | ".join(_md(h) for h in table.header) + " |")
                lines.append("|" + "---|" * len(table.header))
                lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table.rows]
                lines.append("")
            for note in section.notes:
                lines += [_md(note), ""]
        return "\n".join(lines).rstrip("\n") + "\n"

    def to_html(self) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for section in self.sections:
            body.append(f"<h2>{html.escape(section.title)}</h2>")
            if section.facts:
                body.append("<dl>")
                for key, value in section.facts:
                    body.append(f"<dt>{html.escape(key)}</dt><dd>{html.escape(value)}</dd>")
                body.append("</dl>")
            for table in section.tables:
                head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
                rows = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                    for row in table.rows
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            body += [f"<p>{html.escape(note)}</p>" for note in section.notes]
        return _PAGE.format(title=html.escape(self.title), body="\n".join(body))


# no scripts, no external assets: the page is one file that opens anywhere
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
  padding: 0 1rem; color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }}
th {{ background: #f3f3f3; }}
dt {{ font-weight: 600; }}
dd {{ margin: 0 0 0.4rem 1.5rem; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""

_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|])")


def _md(text: str) -> str:
    """Text for one Markdown line or table cell: special characters backslash-escaped, so
    that no string renders as HTML, a link or a broken table."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def card_format(path_suffix: str, requested: str | None = None) -> str:
    """The card format: ``requested`` (md, markdown or html), else from the file's suffix."""
    if requested is not None:
        fmt = {"md": "md", "markdown": "md", "html": "html"}.get(requested.lower())
        if fmt is None:
            raise ValueError(f"unknown card format {requested!r}: md or html")
        implied = FORMATS.get(path_suffix.lower())
        if implied is not None and implied != fmt:
            raise ValueError(f"--format {requested} contradicts the {path_suffix} file name")
        return fmt
    fmt = FORMATS.get(path_suffix.lower())
    if fmt is None:
        raise ValueError(
            f"unknown card extension {path_suffix or '(none)'!r}: use .md or .html, or --format"
        )
    return fmt


def _number(value: Any, spec: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return NOT_RECORDED
    return format(value, spec)


def _metric_row(label: str, m: dict[str, Any] | None) -> tuple[str, ...]:
    m = m or {}
    return (
        label,
        _number(m.get("n"), "d") if isinstance(m.get("n"), int) else NOT_RECORDED,
        _number(m.get("mae"), ".3f"),
        _number(m.get("coverage"), ".1%"),
        _number(m.get("mean_width"), ".2f"),
        _number(m.get("winkler"), ".2f"),
    )


METRIC_HEADER = ("model", "games", "MAE", "coverage", "mean width", "Winkler")


def _json_file(registry: Registry, version: str, name: str) -> dict[str, Any] | None:
    try:
        data = json.loads(registry.file(version, name))
    except (RegistryError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _model_section(registry: Registry, manifest: VersionManifest) -> Section:
    meta = _json_file(registry, manifest.version, "ensemble.json")
    if meta is None:
        return Section("Model", notes=[f"Class and components: {NOT_RECORDED} (no ensemble.json)."])
    weights = meta.get("weights") or []
    components = [c for c in meta.get("components") or [] if isinstance(c, list) and len(c) == 2]
    rows = [
        (str(name), str(cls), _number(weights[i] if i < len(weights) else None, ".3f"))
        for i, (name, cls) in enumerate(components)
    ]
    facts = [
        ("class", str(meta.get("class", NOT_RECORDED))),
        ("library version", str(meta.get("library_version", NOT_RECORDED))),
        ("inputs", f"{meta.get('n_features_in', NOT_RECORDED)} columns per game"),
    ]
    return Section("Model", facts, [Table(("component", "class", "weight"), rows)])


def _data_section(manifest: VersionManifest) -> Section:
    window = manifest.data_window
    facts = [
        ("trained from", str(window.get("trained_from") or NOT_RECORDED)),
        ("trained to", str(window.get("trained_to") or NOT_RECORDED)),
        ("training games", str(window.get("games") or NOT_RECORDED)),
    ]
    if "analogs_to" in window:
        added = manifest.metrics.get("games_added")
        facts.append(("analog games through", str(window["analogs_to"])))
        facts.append(("analog games added", str(NOT_RECORDED if added is None else added)))
    if "recalibrated_to" in window:
        facts.append(
            (
                "recalibrated on",
                f"served outcomes {window.get('recalibrated_from', '?')} to "
                f"{window['recalibrated_to']}",
            )
        )
    return Section("Data window", facts)


def _lineage_section(registry: Registry, manifest: VersionManifest) -> Section:
    aliases = sorted(a for a, v in registry.aliases().items() if v == manifest.version)
    parent = manifest.parent or "none"
    if manifest.parent is not None:
        try:
            made = registry.manifest(manifest.parent).made_by or NOT_RECORDED
        except RegistryError:
            made = "not in this registry"
        parent += f" (made by {made})"
    facts = [
        ("created", manifest.created_at or NOT_RECORDED),
        ("made by", MADE_BY.get(manifest.made_by, manifest.made_by or NOT_RECORDED)),
        ("parent", parent),
        ("code version", manifest.code_version or NOT_RECORDED),
        ("aliases now", ", ".join(aliases) or "none"),
    ]
    moves = [e for e in registry.history() if e.to_version == manifest.version]
    rows = [(str(e.seq), e.at, e.alias, e.from_version or "-", e.reason) for e in moves]
    tables = [Table(("#", "when", "alias", "from", "reason"), rows)] if rows else []
    notes = [] if rows else ["No alias was ever moved to this version."]
    return Section("Lineage and promotions", facts, tables, notes)


def _held_out_section(manifest: VersionManifest) -> Section:
    held = manifest.metrics.get("held_out")
    if not isinstance(held, dict) or not held:
        why = {
            "update_dejavu": " (an analog update is measured against production online, "
            "by its A/B test or comparison: see the promotions)",
            "recalibrate": " (a recalibration changes only the interval: see Interval and "
            "calibration)",
        }.get(manifest.made_by, "")
        return Section("Held-out metrics", notes=[f"Held-out metrics: {NOT_RECORDED}{why}."])
    facts = [
        ("games", f"{held.get('games', '?')} ({held.get('from', '?')} to {held.get('to', '?')})"),
        ("which games", str(held.get("note", NOT_RECORDED))),
    ]
    rows = [
        _metric_row("this version", held.get("model")),
        _metric_row("persistence (baseline)", held.get("persistence")),
    ]
    return Section("Held-out metrics", facts, [Table(METRIC_HEADER, rows)])


def _validation_section(registry: Registry, manifest: VersionManifest) -> Section:
    report = registry.report(manifest.version, VALIDATION_REPORT)
    if report is None:
        return Section(
            "Validation",
            notes=[
                f"Validation report: {NOT_RECORDED}. The lifecycle validates retrained "
                "candidates against production before their A/B test; other versions, and "
                "versions validated by older code, have none."
            ],
        )
    verdict = "passed" if report.get("passed") else "failed"
    facts = [
        ("verdict", f"{verdict} against champion {report.get('champion', NOT_RECORDED)}"),
        ("games", f"{report.get('n', '?')}: {report.get('games_from', NOT_RECORDED)}"),
        ("validated at", str(report.get("at", NOT_RECORDED))),
    ]
    metrics = report.get("metrics") or {}
    rows = [
        _metric_row("candidate (this version)", metrics.get("candidate")),
        _metric_row("champion", metrics.get("champion")),
        _metric_row("persistence (baseline)", metrics.get("persistence")),
    ]
    tables = [Table(METRIC_HEADER, rows)]
    gates = report.get("gates") or []
    if gates:
        gate_rows = [
            (str(g.get("name")), str(g.get("rule")), str(g.get("value")), _pass(g.get("passed")))
            for g in gates
        ]
        tables.append(Table(("gate", "threshold", "value", "result"), gate_rows))
    notes = []
    if not gates:  # reports written before gates were recorded: their reasons, in words
        notes = [str(reason) for reason in report.get("reasons") or []]
        dm = report.get("dm_p_value")
        if isinstance(dm, int | float):
            notes.append(f"Diebold-Mariano test of the point forecasts: {p_text(float(dm))}.")
    return Section("Validation", facts, tables, notes)


def _pass(value: Any) -> str:
    return "pass" if value is True else "fail" if value is False else NOT_RECORDED


def _interval_section(registry: Registry, manifest: VersionManifest) -> Section:
    ensemble = _json_file(registry, manifest.version, "ensemble.json") or {}
    conformal = _json_file(registry, manifest.version, "conformal.json") or {}
    alpha = (ensemble.get("params") or {}).get("alpha")
    level = 1 - alpha if isinstance(alpha, int | float) else None
    facts = [("level", _number(level, ".0%")), *_conformal_facts(ensemble, conformal)]
    facts.insert(2, ("calibration scores", _score_count(registry, manifest)))
    if "calibration_games" in manifest.metrics:
        before = manifest.metrics.get("miss_rate_before")
        facts.append(
            (
                "recalibrated because",
                f"{manifest.metrics['calibration_games']} served outcomes missed at "
                f"{_number(before, '.1%')} before",
            )
        )
    return Section("Interval and calibration", facts)


def _conformal_facts(ensemble: dict[str, Any], conformal: dict[str, Any]) -> list[tuple[str, str]]:
    """How the interval is made, from a version's ensemble.json and conformal.json."""
    if not conformal:
        return [(key, NOT_RECORDED) for key in ("method", "recency weighting", "online updates")]
    params, fitted = conformal.get("params") or {}, conformal.get("fitted") or {}
    method = "split conformal on absolute residuals"
    if ensemble.get("interval_scale"):
        method += ", scaled by the game's state"
    half_life = params.get("half_life")
    updates = NOT_RECORDED
    if "n_updates" in fitted:
        misses = fitted.get("misses", "?")
        updates = f"{fitted['n_updates']} outcomes, {misses} outside the interval"
    return [
        ("method", method),
        ("recency weighting", "none" if half_life is None else f"half-life {half_life} games"),
        ("online updates", updates),
    ]


def _score_count(registry: Registry, manifest: VersionManifest) -> str:
    try:
        data = registry.file(manifest.version, "conformal_scores.npz")
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return f"{len(arrays['scores'])} games"
    except (RegistryError, ValueError, KeyError, OSError):
        return NOT_RECORDED


def _other_metrics(manifest: VersionManifest) -> Section | None:
    shown = {"weights", "held_out", "games_added", "calibration_games", "miss_rate_before"}
    rest = {k: v for k, v in manifest.metrics.items() if k not in shown}
    if not rest:
        return None
    facts = [(str(k), json.dumps(v, sort_keys=True, default=str)) for k, v in sorted(rest.items())]
    return Section("Other recorded metrics", facts)


def build_card(registry: Registry, name: str) -> ModelCard:
    """The card of a version, or of the version an alias points at."""
    manifest = registry.manifest(registry.resolve(name))
    if not isinstance(manifest.metrics, dict) or not isinstance(manifest.data_window, dict):
        # hand-registered metrics may be any JSON: shown as they are, nothing else assumed
        other = {"recorded": manifest.metrics} if not isinstance(manifest.metrics, dict) else {}
        manifest = dataclasses.replace(
            manifest,
            metrics=other or manifest.metrics,
            data_window=manifest.data_window if isinstance(manifest.data_window, dict) else {},
        )
    sections = [
        _model_section(registry, manifest),
        _data_section(manifest),
        _lineage_section(registry, manifest),
        _held_out_section(manifest),
        _validation_section(registry, manifest),
        _interval_section(registry, manifest),
    ]
    other = _other_metrics(manifest)
    sections += [other] if other is not None else []
    sections.append(Section("Intended use and limits", notes=INTENDED_USE))
    return ModelCard(manifest.version, sections)
