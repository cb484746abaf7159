"""``nba-forecast serve``: the HTTP API on the registry's production version."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from nba_forecast.cli.console import fail, out
from nba_forecast.settings import Settings
from nba_forecast.storage.registry import RegistryError


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    bootstrap: Annotated[
        bool,
        typer.Option(
            "--bootstrap", help="train and register version 1 first if the registry is empty"
        ),
    ] = False,
) -> None:
    """Serve forecasts, the live game feed, /healthz, /readyz and /metrics."""
    import uvicorn

    from nba_forecast.cli.lifecycle import context, run_cli_step
    from nba_forecast.data.pregame import latest_team_strength
    from nba_forecast.lifecycle.deployment import open_log
    from nba_forecast.lifecycle.policy import Step
    from nba_forecast.serving.app import create_app
    from nba_forecast.serving.engine import ForecastEngine
    from nba_forecast.storage.spool import SpoolingPredictionLog

    settings = Settings()
    ctx = context()
    if "production" not in ctx.registry.aliases():
        if not bootstrap:
            raise fail(
                "no production version in the registry: run `nba-forecast bootstrap` "
                "(trains on the shipped games and registers version 1), or "
                "`nba-forecast serve --bootstrap`"
            )
        run_cli_step(Step.BOOTSTRAP, None, ctx=ctx)
    try:
        log = open_log(settings)
    except (SQLAlchemyError, ValueError) as error:
        raise fail(f"prediction log: {str(error).splitlines()[0]}") from None
    engine = ForecastEngine(
        ctx.registry,
        SpoolingPredictionLog(log, settings.spool_path()),
        cache_dir=settings.home.expanduser() / "model-cache",
        routing_file=settings.routing_file,
        team_strength=latest_team_strength(ctx.games.games()),
    )
    try:
        engine.reload(force=True)
    except (OSError, ValueError, RegistryError) as error:
        raise fail(f"cannot load the served versions: {error}") from None
    out.print(
        f"serving production {engine.routing.production if engine.routing else '?'} "
        f"on http://{host}:{port}",
        highlight=False,
    )
    uvicorn.run(create_app(engine), host=host, port=port, log_level="info")


def feed(
    game_ids: Annotated[
        list[str] | None, typer.Argument(help="games of the shipped first-half events")
    ] = None,
    url: Annotated[str, typer.Option(help="server URL")] = "http://127.0.0.1:8000",
    season: Annotated[
        int | None, typer.Option(help="feed the first --count games of this season instead")
    ] = None,
    count: Annotated[int, typer.Option(help="games to feed with --season", min=1)] = 20,
) -> None:
    """Replay real games' first halves against a running server as live score updates."""
    import httpx

    from nba_forecast.data.shipped import load_shipped_events, load_shipped_games
    from nba_forecast.serving.feed import replay_game, score_updates

    games = load_shipped_games().set_index("game_id")
    if season is not None:
        if game_ids:
            raise fail("give game ids or --season, not both")
        chosen = games[games["season"] == season].sort_values("game_date").index[:count]
        if chosen.empty:
            raise fail(f"no shipped games in season {season}")
        game_ids = [str(g) for g in chosen]
    if not game_ids:
        raise fail("give one or more game ids, or --season")
    events = load_shipped_events()
    for game_id in game_ids:
        try:
            updates = score_updates(events, game_id)
        except ValueError as error:
            raise fail(str(error)) from None
        teams = games.loc[game_id, ["home_team", "away_team"]] if game_id in games.index else None
        try:
            state = replay_game(
                url,
                game_id,
                updates,
                home_team=None if teams is None else str(teams["home_team"]),
                away_team=None if teams is None else str(teams["away_team"]),
            )
        except (httpx.HTTPError, RuntimeError) as error:
            raise fail(f"{url}: {error}") from None
        forecast = state.get("forecast") or {}
        nan = float("nan")
        low, mid, high = (float(forecast.get(k, nan)) for k in ("lower", "forecast", "upper"))
        out.print(
            f"{game_id}: {len(updates)} updates; forecast at 6:00 Q2 {mid:+.1f} [{low:+.1f}, "
            f"{high:+.1f}] ({forecast.get('model_version')}, arm {forecast.get('arm')}); "
            f"halftime margin {state.get('outcome')}",
            highlight=False,
        )
