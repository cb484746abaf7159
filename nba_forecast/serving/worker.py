"""One server worker process, built from the environment (``nba-forecast serve`` checks the
settings first, then starts one or more of these).

Each worker owns one spool file, chosen by an exclusive lock: two workers never write one
spool, and a restarted worker takes over (and replays) the spool a dead one left.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import sys
from pathlib import Path

from fastapi import FastAPI

from nba_forecast.settings import Settings

logger = logging.getLogger(__name__)

MAX_WORKERS = 64
SWITCH_INTERVAL_S = 0.0005
STATEMENT_TIMEOUT_S = 2.0  # the server's bound on one database statement (and connect)
DB_RETRY_AFTER_S = 2.0  # after a failed write, writes go to the spool for this long
_held: list[int] = []  # lock files held for the life of the process


def claim_spool(base: Path) -> Path:
    """The first spool slot next to ``base`` that no live process holds (slot 0 is
    ``base`` itself)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_WORKERS):
        path = base if slot == 0 else base.with_name(f"{base.stem}.{slot}{base.suffix}")
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        return path
    raise RuntimeError(f"all {MAX_WORKERS} spool slots next to {base} are held")


def release_spools() -> None:
    """Give up the spool slots this process holds (the parent of several workers)."""
    while _held:
        os.close(_held.pop())


def create_server_app() -> FastAPI:
    """The app of one worker: engine, prediction log with timeouts, its own spool."""
    import torch

    from nba_forecast.data.pregame import latest_team_strength
    from nba_forecast.lifecycle.deployment import open_registry, shipped_games_plus
    from nba_forecast.serving.app import create_app
    from nba_forecast.serving.engine import ForecastEngine
    from nba_forecast.serving.online_intervals import LoggedIntervals
    from nba_forecast.storage.prediction_log import PredictionLog
    from nba_forecast.storage.spool import SpoolingPredictionLog

    # one request, one row: intra-op threads only spin against the other workers
    torch.set_num_threads(1)
    # the log writer thread waits for the GIL after every database round trip: at the
    # default 5 ms switch interval a batch commit costs tens of milliseconds under load
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    settings = Settings()
    games = shipped_games_plus(settings.games_uri, endpoint_url=settings.s3_endpoint_url)
    # no ping per checkout (a round trip per batch): a dead connection fails the write,
    # which is spooled, and the pool reconnects
    log = PredictionLog(
        settings.resolved_database_url(),
        statement_timeout_s=STATEMENT_TIMEOUT_S,
        pool_pre_ping=False,
    )
    spool = SpoolingPredictionLog(
        log, claim_spool(settings.spool_path()), retry_after_s=DB_RETRY_AFTER_S
    )
    engine = ForecastEngine(
        open_registry(settings),
        spool,
        cache_dir=settings.home.expanduser() / "model-cache",
        routing_file=settings.routing_file,
        team_strength=latest_team_strength(games.games()),
        online_intervals=False,  # from the logged outcomes instead: every replica alike
    )
    engine.reload(force=True)
    intervals = LoggedIntervals(log)
    try:
        intervals.sync(engine)  # a restarted replica rebuilds its intervals from the log
    except Exception as error:  # the database is away: the background sync catches up
        logger.warning("interval sync at start failed: %s", error)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app = create_app(engine, token=token, intervals=intervals)
    # what startup built (models, games, tables) lives as long as the process: keep it out
    # of the collector's full passes, which would otherwise pause requests for ~100 ms
    gc.collect()
    gc.freeze()
    return app
