from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from nba_forecast.lifecycle import gitops
from nba_forecast.lifecycle.cadence import CADENCES, cadence, due_steps
from nba_forecast.lifecycle.gitops import GitOpsTarget
from nba_forecast.lifecycle.policy import FollowUp, Policy, Step
from nba_forecast.lifecycle.rollout import Rollout, RolloutConfig, msprt_p_value
from nba_forecast.routing import Routing, assign_arm


def test_arms_are_sticky_and_ramp_only_moves_a_to_b() -> None:
    games = [f"00213{i:05d}" for i in range(4000)]
    at_10 = {g: assign_arm(g, "salt", 0.1) for g in games}
    at_50 = {g: assign_arm(g, "salt", 0.5) for g in games}
    assert at_10 == {g: assign_arm(g, "salt", 0.1) for g in games}  # sticky
    assert 0.08 < np.mean([a == "B" for a in at_10.values()]) < 0.12
    assert all(at_50[g] == "B" for g in games if at_10[g] == "B")  # B stays B when ramping
    assert at_10 != {g: assign_arm(g, "other-salt", 0.1) for g in games}


def _run(rollout: Rollout, improvement: float, n: int = 3000, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    actions = []
    for i in range(n):
        actual = rng.normal(0, 8)
        champion = actual + rng.normal(0, 5.5)
        challenger = actual + (champion - actual) * (1 - improvement) + rng.normal(0, 0.5)
        action = rollout.observe(f"g{i}", actual, champion, challenger)
        if action:
            actions.append(action)
        if rollout.decision:
            break
    return actions


def test_better_challenger_is_promoted_after_ramping() -> None:
    rollout = Rollout("a", "b", "s", RolloutConfig(games_per_step=100, max_games=5000))
    actions = _run(rollout, improvement=0.08)
    assert actions[-1] == "promote" and rollout.decision == "promote"
    assert rollout.arm("any-game") == "B"


def test_worse_challenger_is_rolled_back() -> None:
    rollout = Rollout("a", "b", "s", RolloutConfig(max_games=5000))
    actions = _run(rollout, improvement=-0.08)
    assert actions[-1] == "rollback" and rollout.share_b == 0.0
    assert rollout.arm("any-game") == "A"


def test_an_inconclusive_test_promotes_only_a_challenger_at_least_as_accurate() -> None:
    """After max_games without a verdict: equal challengers split by their observed paired
    difference (ties go to the champion); the reason gives the effect and its interval."""
    decisions = {}
    for seed in range(6):
        rollout = Rollout("a", "b", "s", RolloutConfig(max_games=400))
        _run(rollout, improvement=0.0, seed=seed)
        assert rollout.n == 400 and "no decisive difference" in rollout.reason
        assert "95% CI" in rollout.reason and "p = 0.0000" not in rollout.reason
        decisions[seed] = (rollout.decision, rollout.mean_difference)
    assert {d for d, _ in decisions.values()} == {"promote", "rollback"}
    for decision, mean in decisions.values():
        assert (decision == "promote") == (mean <= 0)


def test_guardrail_rolls_back_on_bad_forecasts() -> None:
    rollout = Rollout("a", "b", "s")
    actions = [
        rollout.observe(f"g{i}", 1.0, 2.0, float("nan") if i % 5 == 0 else 2.0) for i in range(30)
    ]
    assert actions.index("rollback") == 19  # decided once 20 games were seen
    assert rollout.decision == "rollback" and "guardrail" in rollout.reason


def test_observe_is_idempotent_and_state_round_trips() -> None:
    rollout = Rollout("a", "b", "s")
    rollout.observe("g1", 1.0, 2.0, 1.5)
    rollout.observe("g1", 1.0, 2.0, 1.5)
    assert rollout.n == 1
    assert Rollout.from_json(rollout.to_json()) == rollout


def test_sequential_p_value_is_always_valid_under_the_null() -> None:
    rng = np.random.default_rng(1)
    false_decisions = 0
    for _ in range(200):
        d = rng.normal(0, 1, 1000)
        running = np.cumsum(d)
        sums = np.cumsum(d**2)
        n = np.arange(1, 1001)
        p_values = [
            msprt_p_value(
                int(k), running[k - 1] / k, sums[k - 1] / k - (running[k - 1] / k) ** 2, 0.25
            )
            for k in n[10:]
        ]
        false_decisions += min(p_values) < 0.05
    assert false_decisions / 200 < 0.08  # peeking at every game keeps the error near 5%


def test_bad_rollout_config() -> None:
    for kwargs in [{"ramp": (0.5, 0.1)}, {"ramp": ()}, {"alpha": 1.5}, {"tau": 0.0}]:
        with pytest.raises(ValueError):
            RolloutConfig(**kwargs)


def test_gitops_commits_routing_once(tmp_path: Path) -> None:
    target = GitOpsTarget(tmp_path / "gitops", "production")
    routing = Routing("a" * 16, "b" * 16, 0.1, "s")
    first = target.commit(routing, "A/B start")
    again = target.commit(routing, "A/B start")
    assert first is not None and again is None  # same state: no new commit
    assert target.read() == routing
    assert Routing.read(target.routing_path) == routing
    target.commit(Routing("b" * 16), "promote b")
    log = gitops._git(target.repo, "log", "--format=%s")
    assert log.splitlines() == ["promote b", "A/B start"]


def test_routing_arms_and_bad_input(tmp_path: Path) -> None:
    routing = Routing("a" * 16, "b" * 16, 0.5, "salt")
    arms = {g: routing.arm(g) for g in (f"g{i}" for i in range(1000))}
    assert {routing.version_for(a) for a in arms.values()} == {"a" * 16, "b" * 16}
    assert all(arms[g] == assign_arm(g, "salt", 0.5) for g in arms)
    assert Routing("a" * 16).arm("g1") == "A"  # no challenger: everyone on production
    assert Routing.from_json(routing.to_json()) == routing
    mounted = tmp_path / "routing.json"  # the ConfigMap key as the Pod sees it
    mounted.write_text(routing.to_json())
    assert Routing.read(mounted) == routing
    for text, message in [
        ("not json", "not JSON"),
        ("[1, 2]", "'production'"),
        ('{"production": "a", "challenger_share": 2}', "not in \\[0, 1\\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            Routing.from_json(text)
    broken = tmp_path / "model-routing.yaml"
    broken.write_text("apiVersion: v1\nkind: ConfigMap\ndata: {}\n")
    with pytest.raises(ValueError, match=r"no routing\.json key"):
        Routing.read(broken)


def test_policy_chains() -> None:
    policy = Policy()
    assert policy.chain(Step.RETRAIN) == (Step.VALIDATE, Step.REGISTER, Step.START_ROLLOUT)
    assert policy.chain(Step.UPDATE_DEJAVU) == (Step.START_ROLLOUT,)
    assert policy.chain(Step.RECALIBRATE) == (Step.ROLL_FORWARD,)
    # the weekly analog update waits for a running A/B test; retraining never does
    assert policy.blocked_by_rollout(Step.UPDATE_DEJAVU)
    assert not policy.blocked_by_rollout(Step.RETRAIN)
    assert not policy.blocked_by_rollout(Step.MONITOR)
    assert policy.supersedes("retrain", "update_dejavu")
    assert not policy.supersedes("retrain", "retrain")
    assert not policy.supersedes("update_dejavu", "retrain")
    assert not policy.supersedes("", "update_dejavu")  # unknown makers rank lowest
    cautious = Policy(follow_ups={Step.RECALIBRATE: FollowUp.CANDIDATE})
    assert cautious.chain(Step.RECALIBRATE) == ()
    with pytest.raises(KeyError, match="makes no version"):
        policy.chain(Step.MONITOR)


def test_cadence_table() -> None:
    assert [c.step for c in CADENCES] == [
        "monitor",
        "decide_rollout",
        "update_dejavu",
        "retrain",
    ]
    assert cadence("monitor").cron == "0 0 * * * *"
    assert all(len(c.cron.split()) == 6 for c in CADENCES)
    monday = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    assert due_steps(monday - dt.timedelta(days=1), monday) == [
        "monitor",
        "decide_rollout",
        "update_dejavu",
    ]
    assert due_steps(
        dt.datetime(2026, 11, 30, 23, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    ) == ["monitor", "decide_rollout", "retrain"]
    assert due_steps(monday, monday + dt.timedelta(minutes=5)) == []
    with pytest.raises(KeyError, match="no cadence"):
        cadence("deploy")


def test_as_of_is_utc_and_bad_times_are_clear() -> None:
    from nba_forecast.lifecycle.context import parse_as_of

    same = parse_as_of("2014-01-15T01:00:00+05:00")
    assert same == parse_as_of("2014-01-14T20:00:00Z") and same.tzinfo == dt.UTC
    assert same.date() == dt.date(2014, 1, 14)  # date cuts are taken in UTC
    assert parse_as_of("2014-01-14T20:00") == same  # no zone: UTC
    now = dt.datetime.now(dt.UTC)
    assert abs((parse_as_of("now") - now).total_seconds()) < 5
    for text in ("yesterday", "0001-01-01", "2014-13-01"):
        with pytest.raises(ValueError, match="bad as_of"):
            parse_as_of(text)


def test_a_running_test_says_why_it_has_not_decided() -> None:
    rollout = Rollout("a", "b", "s", RolloutConfig(max_games=400))
    assert rollout.why_undecided() == "(no decision before 100 paired games; 100 to go)"
    for i in range(150):  # equal errors: no significant difference
        rollout.observe(f"g{i}", 0.0, 1.0 if i % 2 else -1.0, -1.0 if i % 2 else 1.0, 5.0)
    assert rollout.decision is None
    why = rollout.why_undecided()
    assert why.startswith("(no significant difference yet: challenger +0.000 points per game")
    assert "it decides by 400 paired games" in why
