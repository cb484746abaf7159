"""``nba-forecast serve``: the HTTP API on the registry's production version."""

from __future__ import annotations

import os
import shutil
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from nba_forecast.cli.console import fail, out
from nba_forecast.cli.options import settings_or_fail
from nba_forecast.routing import Routing


def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=16, help="worker processes (one per core helps)")
    ] = 1,
    bootstrap: Annotated[
        bool,
        typer.Option(
            "--bootstrap", help="train and register version 1 first if the registry is empty"
        ),
    ] = False,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="serve writes without a token on a non-loopback interface (never in a cluster)",
        ),
    ] = False,
) -> None:
    """Serve forecasts, the live game feed and its event stream, /healthz, /readyz and
    /metrics. Endpoints that write require NBA_FORECAST_API_TOKEN as a bearer token."""
    import uvicorn

    from nba_forecast.cli.lifecycle import context, run_cli_step
    from nba_forecast.lifecycle.deployment import open_log
    from nba_forecast.lifecycle.policy import Step
    from nba_forecast.serving.worker import create_server_app, release_spools

    settings = settings_or_fail()
    if settings.api_token is None and host not in LOOPBACK and not insecure_no_auth:
        raise fail(
            f"no API token: set NBA_FORECAST_API_TOKEN (e.g. `openssl rand -hex 32`) to serve "
            f"on {host}; writes on a non-loopback interface need it (--insecure-no-auth to "
            "serve without, on a trusted network only)"
        )
    if settings.api_token is not None and len(settings.api_token.get_secret_value()) < 16:
        raise fail("NBA_FORECAST_API_TOKEN is shorter than 16 characters; use a random token")
    ctx = context(create=bootstrap)
    try:
        routed = Routing.mounted(settings.routing_file)
    except (OSError, ValueError) as error:
        raise fail(f"routing file: {error}") from None
    if "production" not in ctx.registry.aliases() and routed is None:
        if not bootstrap:
            raise fail(
                "no production version in the registry: run `nba-forecast bootstrap` "
                "(trains on the shipped games and registers version 1), or "
                "`nba-forecast serve --bootstrap`"
            )
        run_cli_step(Step.BOOTSTRAP, None, ctx=ctx)
    try:
        # the server owns the log's schema: it adds the tables to an empty database once
        open_log(settings, create=bootstrap, initialize=True).engine.dispose()
    except OperationalError as error:
        first = str(error).splitlines()[0]
        # a database that does not exist is a wrong URL, not an outage to spool through
        if not settings.resolved_database_url().startswith("postgres") or "does not exist" in first:
            raise fail(f"prediction log: {first}") from None
        # the database server is down: serve anyway, forecasts spool until it answers (a
        # pod that restarts during an outage must not crash-loop with its spool waiting)
        out.print(f"warning: prediction log unreachable ({first}); forecasts spool", style="yellow")
    except (SQLAlchemyError, ValueError, OSError, RuntimeError) as error:
        raise fail(f"prediction log: {str(error).splitlines()[0]}") from None
    try:
        app = create_server_app()  # every version it serves loads here, or one line says why
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise fail(f"cannot load the served versions: {first}") from None
    production = app.state.services.engine.routing.production
    auth = "bearer token required for writes" if settings.api_token else "writes unauthenticated"
    out.print(
        f"serving production {production} on http://{host}:{port} ({workers} worker(s), {auth})",
        highlight=False,
    )
    if workers == 1:
        uvicorn.run(
            app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACEFUL_S
        )
    else:
        app.state.services.close()
        release_spools()  # the workers take the spool slots
        # the workers' metrics, added up whichever worker a scrape reaches
        metrics_dir = settings.home.expanduser() / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        uvicorn.run(
            "nba_forecast.serving.worker:create_server_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            timeout_graceful_shutdown=GRACEFUL_S,
        )


LOOPBACK = ("127.0.0.1", "localhost", "::1")
GRACEFUL_S = 5  # on SIGTERM, open event streams get this long before they are closed


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

    from nba_forecast.data.loaders.tables import normalize_game_id
    from nba_forecast.data.schema import GAME_ID_EXPECTED, is_game_id
    from nba_forecast.serving.feed import feed_games, season_games

    if season is not None and game_ids:
        raise fail("give game ids or --season, not both")
    try:
        chosen = season_games(season, count) if season is not None else list(game_ids or [])
    except ValueError as error:
        raise fail(str(error)) from None
    if not chosen:
        raise fail("give one or more game ids, or --season")
    chosen = [normalize_game_id(g) for g in chosen]
    malformed = [g for g in chosen if not is_game_id(g)]
    if malformed:
        raise fail(f"game id {malformed[0][:40]!r} breaks the id format: {GAME_ID_EXPECTED}")
    try:
        for game_id, posted, state in feed_games(url, chosen):
            forecast = state.get("forecast") or {}
            nan = float("nan")
            low, mid, high = (float(forecast.get(k, nan)) for k in ("lower", "forecast", "upper"))
            out.print(
                f"{game_id}: {posted} updates; forecast at 6:00 Q2 {mid:+.1f} [{low:+.1f}, "
                f"{high:+.1f}] ({forecast.get('model_version')}, arm {forecast.get('arm')}); "
                f"halftime margin {state.get('outcome')}"
                + (f"; {len(state['refused'])} update(s) refused" if state.get("refused") else "")
                + (f"; {state['note']}" if state.get("note") else ""),
                highlight=False,
            )
    except ValueError as error:
        raise fail(str(error)) from None
    except (httpx.HTTPError, RuntimeError) as error:
        raise fail(f"{url}: {error}") from None


def served_ab(
    season: Annotated[int, typer.Option(help="feed the first --count games of this season")] = 2013,
    count: Annotated[int, typer.Option(help="games to serve", min=1, max=2000)] = 40,
) -> None:
    """Try the running A/B test on served traffic: a server on the routing git carries,
    real games through the HTTP feed, then the decision; prints one line."""
    import tempfile
    from pathlib import Path

    import httpx

    from nba_forecast.cli.lifecycle import STEP_ERRORS, context
    from nba_forecast.lifecycle.served_trial import served_trial
    from nba_forecast.serving.feed import season_games

    try:
        games = season_games(season, count)
        with tempfile.TemporaryDirectory(prefix="nba-forecast-pod-") as pod:
            result = served_trial(context(), games, workdir=Path(pod))
    except (*STEP_ERRORS, httpx.HTTPError) as error:
        raise fail(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    out.print(result.line(), highlight=False)
