"""A feed adapter: replays a game's scoring events (our events format) against a server as
live score updates, for demos and tests."""

from __future__ import annotations

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
) -> dict[str, Any]:
    """Post the updates in order; returns the server's final view of the game."""
    http = client or httpx.Client(base_url=url, timeout=10)
    try:
        for number, update in enumerate(updates):
            body = (
                {**update, "home_team": home_team, "away_team": away_team}
                if number == 0
                else update
            )
            response = http.post(f"/v1/games/{game_id}/score", json=body)
            if response.status_code not in (200, 409):
                raise RuntimeError(
                    f"update {number + 1} rejected ({response.status_code}): {response.text[:200]}"
                )
        final = http.get(f"/v1/games/{game_id}")
        final.raise_for_status()
        return dict(final.json())
    finally:
        if client is None:
            http.close()
