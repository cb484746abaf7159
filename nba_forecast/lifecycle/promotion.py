"""The steps that change what serves: mark a validated candidate, start an A/B rollout,
decide it from what the servers logged, or roll a version forward at once. Each moves the
registry aliases and commits the resulting routing to the GitOps repository, which the
server Pods mount.

The running rollout's state (``rollouts/current.json``), the candidate waiting for it
(``rollouts/queued.json``) and every finished test (``rollouts/finished/``) live in the
lifecycle state store. Which candidate tests when is ``Policy``'s rule (no empty experiments,
precedence, one queue slot).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pandas as pd

from nba_forecast.lifecycle.compare import ForecastComparison, compare_with_production
from nba_forecast.lifecycle.context import Context, StepResult
from nba_forecast.lifecycle.policy import Step
from nba_forecast.lifecycle.rollout import Rollout
from nba_forecast.routing import Routing
from nba_forecast.storage.object_store import ObjectNotFound
from nba_forecast.storage.registry import RegistryError

ROLLOUT_KEY = "rollouts/current.json"
QUEUED_KEY = "rollouts/queued.json"
FINISHED_PREFIX = "rollouts/finished/"
DECISION_LOOKBACK = dt.timedelta(days=365)


def rollout_state(ctx: Context) -> Rollout | None:
    try:
        return Rollout.from_json(ctx.state.get(ROLLOUT_KEY).decode())
    except ObjectNotFound:
        return None


def running_rollout(ctx: Context) -> Rollout | None:
    state = rollout_state(ctx)
    return state if state is not None and state.decision is None else None


def publish_routing(ctx: Context, message: str, *, reverting: str | None = None) -> Routing:
    """The routing that follows from the aliases and the running rollout, committed
    (``reverting``: as the revert of the commit with that subject)."""
    routing = _routing_with(ctx, ctx.registry.resolve("production"))
    ctx.gitops.commit(routing, message, reverting=reverting)
    return routing


def _routing_with(ctx: Context, production: str) -> Routing:
    """``production`` serving, with the running rollout's challenger, share and salt."""
    live = running_rollout(ctx)
    return Routing(
        production,
        live.challenger if live else None,
        live.share_b if live else 0.0,
        live.salt if live else "",
    )


def _save(ctx: Context, state: Rollout, message: str) -> None:
    ctx.state.put(ROLLOUT_KEY, state.to_json().encode())
    if state.decision is not None:  # kept: a superseded or decided test stays on record
        ctx.state.put(f"{FINISHED_PREFIX}{state.challenger}.json", state.to_json().encode())
    # a rollback undoes the A/B start: in git, a revert commit of it
    reverting = f"A/B start: {state.challenger}" if state.decision == "rollback" else None
    publish_routing(ctx, message, reverting=reverting)


def register(ctx: Context, as_of: dt.datetime, *, candidate: str, report: str = "") -> StepResult:
    """Record the validated candidate under the ``candidate`` alias (idempotent)."""
    version = ctx.registry.resolve(candidate)
    if ctx.registry.aliases().get("candidate") != version:
        ctx.registry.promote("candidate", version, reason="validated", report=report or None)
    return StepResult(Step.REGISTER, f"candidate {version} validated", version)


def start_rollout(
    ctx: Context,
    as_of: dt.datetime,
    *,
    candidate: str = "candidate",
    share: float | None = None,
    report: str = "",
    compare: bool = True,
) -> StepResult:
    """Begin an A/B test of ``candidate`` against production at ``share`` of the games, as
    the policy says: a candidate that forecasts like production is rolled forward as a data
    refresh (unless not ``compare``); while another test runs, a candidate of a higher-ranked
    step supersedes it and any other waits in the queue. Re-running changes nothing."""
    production = ctx.registry.resolve("production")
    challenger = ctx.registry.resolve(candidate)
    if challenger == production:
        if candidate == "production":
            raise RegistryError(f"{challenger} is already production")
        # e.g. the same run again after a data refresh rolled the candidate forward
        return StepResult(Step.START_ROLLOUT, f"{challenger} is already production", challenger)
    live = running_rollout(ctx)
    if live is not None and live.challenger == challenger:
        # re-running changes nothing, but completes a routing commit an earlier run lost
        publish_routing(ctx, f"A/B start: {challenger} at {live.share_b:.0%} against {production}")
        return StepResult(Step.START_ROLLOUT, f"A/B of {challenger} already running", challenger)
    ctx.registry.verify(challenger)  # nothing routes to a version whose files are not intact
    if live is not None:
        made_by, running_by = _made_by(ctx, challenger), _made_by(ctx, live.challenger)
        if not ctx.policy.supersedes(made_by, running_by):
            return _queue(ctx, as_of, challenger, made_by or "?", live, report)
    comparison = compare_with_production(ctx, as_of, challenger, production) if compare else None
    ended: tuple[StepResult, ...] = ()
    if live is not None:  # checked and compared first: a failure leaves the running test be
        live.decision, live.reason = (
            "superseded",
            f"by {challenger} ({made_by} outranks {running_by or '?'}) after {live.n} paired "
            f"games, challenger {live.mean_difference:+.3f} points per game so far",
        )
        _save(ctx, live, f"A/B superseded: {live.challenger} {live.reason}")
        ended = (StepResult(Step.START_ROLLOUT, live.reason, live.challenger, event="superseded"),)
    return _begin(ctx, as_of, production, challenger, share, report, comparison, ended)


def _made_by(ctx: Context, version: str) -> str:
    return ctx.registry.manifest(version).made_by


def _begin(
    ctx: Context,
    as_of: dt.datetime,
    production: str,
    challenger: str,
    share: float | None,
    report: str,
    comparison: ForecastComparison | None,
    ended: tuple[StepResult, ...] = (),
) -> StepResult:
    """The A/B test of ``challenger``, or its roll forward when its forecasts equal
    production's (``comparison``; None: not compared)."""
    if comparison is not None and comparison.equivalent:
        moved = roll_forward(
            ctx, as_of, version=challenger, reason=f"data refresh: {comparison.describe()}"
        )
        return StepResult(
            Step.START_ROLLOUT,
            f"data refresh, no A/B test: {moved.detail}; {comparison.describe()}",
            challenger,
            comparison.as_metrics(),
            comparison,
            event="refresh",
            then=ended,
        )
    first = ctx.policy.first_share if share is None else share
    ramp = tuple(sorted({first, *(s for s in ctx.policy.rollout.ramp if s > first)}))
    state = Rollout(
        production,
        challenger,
        salt=f"{challenger}-{as_of.date()}",
        config=dataclasses.replace(ctx.policy.rollout, ramp=ramp),
        started_at=as_of.isoformat(),
    )
    message = f"A/B start: {challenger} at {state.share_b:.0%} against {production}"
    _save(ctx, state, message + (f"\n\n{report}" if report else ""))
    compared = "not compared" if comparison is None else comparison.describe()
    return StepResult(
        Step.START_ROLLOUT,
        f"{message}; {compared}",
        challenger,
        {"share": state.share_b, **(comparison.as_metrics() if comparison else {})},
        state,
        then=ended,
    )


def _queue(
    ctx: Context, as_of: dt.datetime, challenger: str, made_by: str, live: Rollout, report: str
) -> StepResult:
    """Keep ``challenger`` for when the running test is decided, in place of a waiting one
    that does not outrank it."""
    waiting = queued_candidate(ctx)
    outranked = waiting is not None and ctx.policy.supersedes(waiting.get("made_by", ""), made_by)
    if waiting is not None and waiting["version"] != challenger and outranked:
        return StepResult(
            Step.START_ROLLOUT,
            f"{challenger} dropped: {waiting['version']} ({waiting.get('made_by')}) "
            f"outranks it ({made_by}) and waits for the A/B test of {live.challenger}",
            challenger,
            event="dropped",
        )
    ctx.state.put(
        QUEUED_KEY,
        json.dumps(
            {"version": challenger, "made_by": made_by, "at": as_of.isoformat(), "report": report}
        ).encode(),
    )
    detail = (
        f"{challenger} waits for the A/B test of {live.challenger} ({made_by} does not outrank it)"
    )
    if waiting is not None and waiting["version"] != challenger:
        detail += f"; it replaces {waiting['version']}, which was waiting"
    return StepResult(Step.START_ROLLOUT, detail, challenger, event="queued")


def queued_candidate(ctx: Context) -> dict[str, str] | None:
    try:
        data: dict[str, str] | None = json.loads(ctx.state.get(QUEUED_KEY))
    except ObjectNotFound:
        return None
    return data or None  # null: the slot was emptied


def start_queued(ctx: Context, as_of: dt.datetime) -> StepResult | None:
    """After a test is decided: the A/B test (or data refresh) of the waiting candidate. A
    candidate that cannot start (it is production now, was built on another version than
    production and is not a retrain, or cannot be checked) is dropped, with the reason; the
    decision that called this stands either way."""
    waiting = queued_candidate(ctx)
    if waiting is None or running_rollout(ctx) is not None:
        return None
    version = waiting["version"]
    production = ctx.registry.resolve("production")
    try:
        parent = ctx.registry.manifest(version).parent
        if version == production:
            raise RegistryError("it is production now")
        if parent != production and waiting.get("made_by") != Step.RETRAIN:
            raise RegistryError(f"it was built on {parent}, and production is now {production}")
        ctx.registry.verify(version)
        comparison = compare_with_production(ctx, as_of, version, production)
        started = _begin(
            ctx, as_of, production, version, None, waiting.get("report", ""), comparison
        )
    except (RegistryError, ValueError, KeyError, OSError) as error:
        started = StepResult(
            Step.START_ROLLOUT, f"waiting {version} dropped: {error}", version, event="dropped"
        )
    ctx.state.put(QUEUED_KEY, b"null")  # only now: a crash above leaves it waiting
    return started


def paired_forecasts(joined: pd.DataFrame, state: Rollout) -> pd.DataFrame:
    """One row per game scored by both the challenger and another version in the same
    request (served + shadow): game_id, actual, champion, challenger, latency_ms."""
    mine = joined["model_version"] == state.challenger
    challenger = joined[mine].drop_duplicates("game_id")
    champion = joined[~mine].drop_duplicates("game_id")
    pairs = challenger.merge(champion, on="game_id", suffixes=("", "_champion"))
    pairs = pairs.sort_values(["predicted_at", "game_id"], kind="stable")
    return pd.DataFrame(
        {
            "game_id": pairs["game_id"].astype(str),
            "actual": pairs["actual"].astype(float),
            "champion": pairs["forecast_champion"].astype(float),
            "challenger": pairs["forecast"].astype(float),
            "latency_ms": pairs["latency_ms"].astype(float),
        }
    )


def _experiment_pairs(ctx: Context, state: Rollout, as_of: dt.datetime) -> list[Any]:
    """The pairs logged since the experiment started (at most a year back), in time order."""
    start = as_of - DECISION_LOOKBACK
    if state.started_at:
        start = max(start, dt.datetime.fromisoformat(state.started_at))
    if start >= as_of:
        return []
    return list(paired_forecasts(ctx.log.joined(start, as_of), state).itertuples(index=False))


def _act(ctx: Context, state: Rollout, action: str) -> None:
    if action == "promote":
        ctx.registry.promote("production", state.challenger, reason=f"A/B won: {state.reason}")
    elif action == "rollback":
        ctx.registry.promote("candidate", state.champion, reason=f"A/B rolled back: {state.reason}")


def decide_rollout(ctx: Context, as_of: dt.datetime) -> StepResult:
    """Feed the logged pairs to the running rollout in time order, act on its decision
    (ramp, promote, roll back) and commit the routing. Games already seen are skipped, so
    re-running with the same ``as_of`` changes nothing."""
    state = running_rollout(ctx)
    if state is None:
        return StepResult(Step.DECIDE_ROLLOUT, "no A/B test running", status="not_due")
    actions = []
    for row in _experiment_pairs(ctx, state, as_of):
        action = state.observe(
            row.game_id, row.actual, row.champion, row.challenger, row.latency_ms
        )
        if action is not None:
            actions.append(action)
            _act(ctx, state, action)
        if state.decision is not None:
            break
    verdict = state.decision or f"running at {state.share_b:.0%}"
    why = state.reason if state.decision else state.why_undecided()
    detail = f"A/B {verdict}: {state.challenger} after {state.n} paired games {why}"
    _save(ctx, state, detail.strip())
    metrics = {
        "paired_games": state.n,
        "share": state.share_b,
        "p_value": state.p_value,
        "ramps": actions.count("ramp"),
    }
    started = start_queued(ctx, as_of) if state.decision is not None else None
    return StepResult(
        Step.DECIDE_ROLLOUT,
        detail.strip(),
        state.challenger,
        metrics,
        state,
        then=(started,) if started is not None else (),
    )


def roll_forward(
    ctx: Context, as_of: dt.datetime, *, version: str = "candidate", reason: str = ""
) -> StepResult:
    """Promote ``version`` to production at once (no A/B test) and commit the routing."""
    target = ctx.registry.resolve(version)
    ctx.registry.verify(target)
    message = f"roll forward: production {target}" + (f" ({reason})" if reason else "")
    if ctx.gitops.pull_request:
        # reviewed: nothing moves until the change is merged; then the same command without
        # --pull-request moves the alias (its routing commit is then already on main)
        commit = ctx.gitops.commit(_routing_with(ctx, target), message)
        where = ctx.gitops.review_branch(commit) if commit else "nothing to change"
        return StepResult(Step.ROLL_FORWARD, f"production {target} for review: {where}", target)
    if ctx.registry.aliases().get("production") != target:
        ctx.registry.promote("production", target, reason=reason or f"rolled forward at {as_of}")
    publish_routing(ctx, message)
    return StepResult(Step.ROLL_FORWARD, f"production {target}", target)


View = tuple[str | None, str | None, float]  # production, challenger, challenger share


def serving_views(ctx: Context, server_url: str | None = None) -> tuple[dict[str, View], list[str]]:
    """What serves according to git (the routing ConfigMap), the registry (the production
    alias and the running rollout) and, given its URL, the server; and every disagreement."""
    routing = ctx.gitops.read()
    views_notes: list[str] = []
    views: dict[str, View] = {
        "git": (routing.production, routing.challenger, routing.challenger_share)
        if routing
        else (None, None, 0.0)
    }
    state = running_rollout(ctx)
    views["registry"] = (
        ctx.registry.aliases().get("production"),
        state.challenger if state else None,
        state.share_b if state else 0.0,
    )
    if server_url:
        import httpx

        try:
            response = httpx.get(f"{server_url.rstrip('/')}/readyz", timeout=5)
            body = response.json()
            if response.status_code != 200 or not isinstance(body, dict):
                raise ValueError(f"/readyz answered {response.status_code}: {response.text[:200]}")
            views["server"] = (
                body.get("production"),
                body.get("challenger"),
                float(body.get("challenger_share") or 0.0),
            )
        except (httpx.HTTPError, ValueError, TypeError) as error:
            raise RuntimeError(f"cannot ask the server at {server_url}: {error}") from None
        if body.get("routing_error"):
            views_notes.append(f"server cannot load the newest routing: {body['routing_error']}")
    disagreements = list(views_notes)
    names = ("production", "challenger", "challenger share")
    (first, reference), *others = views.items()
    for source, view in others:
        for name, mine, theirs in zip(names[:2], reference[:2], view[:2], strict=True):
            if mine != theirs:
                disagreements.append(f"{name}: {first} {mine}, {source} {theirs}")
        if abs(reference[2] - view[2]) > 1e-9:
            disagreements.append(f"{names[2]}: {first} {reference[2]}, {source} {view[2]}")
    return views, disagreements
