"""The status page: ``GET /status`` for people (HTML) and ``GET /v1/status`` (the same, as
JSON), from what ``status`` reads.

Every value that comes from data is escaped; the page loads nothing from elsewhere and runs
no script (its Content-Security-Policy forbids both), so it works offline; it reloads itself.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from nba_forecast.serving.engine import ForecastEngine
from nba_forecast.serving.status import (
    DECISIONS,
    EARLIEST,
    GAMES,
    Status,
    StatusReader,
    parse_time,
)
from nba_forecast.storage.live_games import LiveGameStore

DEFAULT_WINDOW = 200  # finished games in the accuracy window
MAX_WINDOW = 5000
REFRESH_S = 30
QUERY_PARAMETERS = ("games",)
SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


# -- the page ------------------------------------------------------------------------------
def _table(element_id: str, headers: list[str], rows: list[list[str]]) -> str:
    """A table; every cell escaped (headers are ours)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table id="{element_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _note(text: str, kind: str = "note") -> str:
    return f'<p class="{kind}">{html.escape(text)}</p>'


def _section(element_id: str, title: str, content: str) -> str:
    return f'<section id="{element_id}"><h2>{html.escape(title)}</h2>{content}</section>'


def _serving_html(status: Status) -> str:
    rows = [
        [
            s.version,
            s.role,
            f"{s.share:.0%}",
            s.made_by or "not recorded",
            _shown(s.registered_at) if s.registered_at else "unknown",
        ]
        for s in status.serving
    ]
    parts = [
        _table(
            "serving-table", ["Version", "Role", "Share of games", "Made by", "Registered"], rows
        )
    ]
    if len(status.serving) > 1:
        parts.append(_note("Each version also scores the other's games in shadow (not served)."))
    if status.serving_note:
        parts.append(_note(status.serving_note, "warn"))
    return _section("serving", "What serves", "".join(parts))


def _decisions_html(status: Status) -> str:
    if status.decisions_error:
        content = _note(status.decisions_error, "warn")
    elif not status.decisions:
        content = _note("no decisions recorded yet (no promotion, no A/B test)")
    else:
        rows = [[_shown(d.at), d.what, d.versions, d.why] for d in status.decisions]
        content = _table("decisions-table", ["When", "What", "Versions", "Why"], rows)
    return _section("decisions", f"Last {DECISIONS} lifecycle decisions", content)


def _accuracy_html(status: Status) -> str:
    if status.accuracy_error:
        content = _note(status.accuracy_error, "warn")
    elif not status.accuracy:
        content = _note("no finished games with a logged forecast yet")
    else:
        rows = [
            [
                a.model_version,
                "shadow (not served)" if a.arm == "shadow" else a.arm,
                str(a.games),
                f"{a.mae:.2f}",
                f"{a.coverage:.1%} (nominal {a.nominal:.0%})",
                f"{a.mean_width:.1f}",
            ]
            # the served arms first, then what shadow scoring says of each version
            for a in sorted(status.accuracy, key=lambda a: (a.arm == "shadow", a.arm))
        ]
        headers = ["Version", "Arm", "Games", "MAE (points)", "Coverage", "Mean width (points)"]
        content = _table("accuracy-table", headers, rows)
    title = f"Accuracy over the last {status.window} finished games"
    served = sum(a.games for a in status.accuracy if a.arm != "shadow")
    if status.accuracy and served < status.window:
        title += f" ({served} so far)"
    return _section("accuracy", title, content)


def _games_html(status: Status) -> str:
    if status.games_error:
        content = _note(status.games_error, "warn")
    elif not status.games:
        content = _note("no live games followed yet (no score updates received)")
    else:
        rows = [
            [
                g.game_id,
                g.teams,
                g.score,
                g.clock,
                g.forecast,
                g.halftime,
                g.note,
                _shown(g.updated_at),
            ]
            for g in status.games
        ]
        headers = [
            "Game",
            "Teams",
            "Score",
            "Clock",
            "Forecast [interval]",
            "Halftime",
            "Note",
            "Updated",
        ]
        content = _table("games-table", headers, rows)
    return _section("games", f"Live games (the {GAMES} updated last)", content)


def _shown(iso: str) -> str:
    """An ISO time as people read it, in UTC."""
    moment = parse_time(iso)
    if moment == EARLIEST:
        return iso
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 75rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }
th { background: #f4f4f4; }
td { font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.warn { color: #8a2c00; font-weight: 600; }
.note, footer { color: #555; }
"""


def render(status: Status) -> str:
    """The page: plain HTML with a little inline CSS; it reloads itself every
    ``REFRESH_S`` seconds."""
    return "".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="refresh" content="{REFRESH_S}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>nba-forecast status</title><style>{STYLE}</style></head><body>",
            "<h1>nba-forecast status</h1>",
            f"<p>as of {html.escape(_shown(status.generated_at))}; "
            f"reloads every {REFRESH_S} s; the same as JSON: "
            '<a href="/v1/status">/v1/status</a></p>',
            _serving_html(status),
            _decisions_html(status),
            _accuracy_html(status),
            _games_html(status),
            "<footer>Halftime margin forecasts at 6:00 left in the 2nd quarter. Coverage: the "
            "share of halftime margins inside the served interval.</footer>",
            "</body></html>",
        ]
    )


# -- routes ----------------------------------------------------------------------------------
WINDOW = Annotated[
    int,
    Query(ge=1, le=MAX_WINDOW, description="finished games in the accuracy window"),
]


def _only_known_parameters(request: Request) -> None:
    unknown = sorted(set(request.query_params) - set(QUERY_PARAMETERS))
    if unknown:
        raise HTTPException(
            400,
            f"unknown query parameter {unknown[0][:40]!r}; {request.url.path} takes only: "
            + ", ".join(QUERY_PARAMETERS),
        )


def status_routes(app: FastAPI, engine: ForecastEngine, store: LiveGameStore) -> None:
    """``GET /status`` (HTML) and ``GET /v1/status`` (JSON) on ``app``."""
    reader = StatusReader(engine, store)

    @app.get("/status", response_class=HTMLResponse)
    async def status_page(request: Request, games: WINDOW = DEFAULT_WINDOW) -> HTMLResponse:
        """The status page for people: what serves with which shares, the last lifecycle
        decisions, accuracy over the last finished games, the live games."""
        _only_known_parameters(request)
        page = render(await reader.read(games))
        headers = {"Content-Security-Policy": SECURITY_POLICY, "Cache-Control": "no-store"}
        return HTMLResponse(page, headers=headers)

    @app.get("/v1/status")
    async def status_json(request: Request, games: WINDOW = DEFAULT_WINDOW) -> dict[str, Any]:
        """The status page's content as JSON (a source that failed: its ``*_error``)."""
        _only_known_parameters(request)
        return asdict(await reader.read(games))
