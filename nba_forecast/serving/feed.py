"""A feed adapter: replays a game's scoring events (our events format) against a server as
live score updates, for demos and tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd

from nba_forecast.data.events import period_length, period_start


def score_updates(events: pd.DataFrame, game_id: str) -> list[dict[str, Any]]:
    """One update per scoring event of ``game_id`` (columns game_id, period, elapsed_s, home,
    away), in game order, then one at the start of the 3rd period (halftime is over)."""
    game = events[events["game_id"] == game_id].sort_values(["period", "elapsed_s"], kind="stable")
    if game.empty:
        raise ValueError(f"no scoring events for game {game_id}")
    updates: list[dict[str, Any]] = []
    for row in game.itertuples(index=False):
        period = int(row.period)
        end = int(
            period_start(pd.Series([period]).to_numpy())[0]
            + period_length(pd.Series([period]).to_numpy())[0]
        )
        remaining = end - int(row.elapsed_s)
        updates.append(
            {
                "period": period,
                "clock": f"{remaining // 60}:{remaining % 60:02d}",
                "home": int(row.home),
                "away": int(row.away),
            }
        )
    last = updates[-1]
    if last["period"] <= 2:
        updates.append({"period": 3, "clock": "12:00", "home": last["home"], "away": last["away"]})
    return updates


def replay_game(
    url: str,
    game_id: str,
    updates: list[dict[str, Any]],
    *,
    client: httpx.Client | None = None,
    home_team: str | None = None,
    away_team: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Post the updates in order; returns the server's final view of the game."""
    http = client or httpx.Client(base_url=url, timeout=10, headers=auth_headers(token))
    try:
        refused: list[str] = []
        for number, update in enumerate(updates):
            body = (
                {**update, "home_team": home_team, "away_team": away_team}
                if number == 0
                else update
            )
            response = _post_retrying(http, f"/v1/games/{game_id}/score", body)
            if response.status_code == 409:  # an update the game cannot take: say which
                refused.append(f"update {number + 1}: {response.json().get('detail')}")
            elif response.status_code != 200:
                raise RuntimeError(
                    f"update {number + 1} rejected ({response.status_code}): {response.text[:200]}"
                )
        final = http.get(f"/v1/games/{game_id}")
        final.raise_for_status()
        return {**final.json(), "refused": refused}
    finally:
        if client is None:
            http.close()


RETRIES = 5


def _post_retrying(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST, waiting out a 503 (the server's database is busy or away) as it asks."""
    for _ in range(RETRIES):
        response = http.post(path, json=body)
        if response.status_code != 503:
            return response
        time.sleep(min(5.0, float(response.headers.get("retry-after", "1") or 1)))
    return response


def auth_headers(token: str | None) -> dict[str, str]:
    """The bearer token the server's writes need (default: NBA_FORECAST_API_TOKEN)."""
    if token is None:
        from nba_forecast.settings import Settings

        secret = Settings().api_token
        token = secret.get_secret_value() if secret else None
    return {"Authorization": f"Bearer {token}"} if token else {}


def feed_games(
    url: str, game_ids: list[str], token: str | None = None
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Each shipped game's first half posted to the server at ``url`` as live updates, in
    turn: (game id, updates posted, the server's final view of the game)."""
    from nba_forecast.data.shipped import load_shipped_events, load_shipped_games

    games = load_shipped_games().set_index("game_id")
    events = load_shipped_events()
    with httpx.Client(base_url=url, timeout=10, headers=auth_headers(token)) as client:
        for game_id in game_ids:
            updates = score_updates(events, game_id)
            teams = games.loc[game_id] if game_id in games.index else None
            state = replay_game(
                url,
                game_id,
                updates,
                client=client,
                home_team=None if teams is None else str(teams["home_team"]),
                away_team=None if teams is None else str(teams["away_team"]),
            )
            yield game_id, len(updates), state


def season_games(season: int, count: int) -> list[str]:
    """The first ``count`` shipped games of ``season``, in date order."""
    from nba_forecast.data.shipped import load_shipped_games

    games = load_shipped_games()
    chosen = games[games["season"] == season].sort_values("game_date")["game_id"][:count]
    if chosen.empty:
        raise ValueError(f"no shipped games in season {season}")
    return [str(g) for g in chosen]
