#!/usr/bin/env bash
# `make demo`: the main job on embedded defaults, each step timed (a table at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
ROOT=$(pwd)
STATE=$ROOT/reports/replay/state/continuous
declare -a NAMES=() SECONDS_TAKEN=()
START=$(date +%s)

step() {  # step NAME COMMAND...: run it, then record how long it took
    local name=$1 began
    shift
    began=$(date +%s)
    echo "== $name"
    "$@"
    NAMES+=("$name")
    SECONDS_TAKEN+=($(($(date +%s) - began)))
    echo "== $name: ${SECONDS_TAKEN[-1]} s"
}

served_ab() {
    rm -rf reports/gitops-remote.git reports/served-ab
    git clone -q --bare "$STATE/gitops" reports/gitops-remote.git
    NBA_FORECAST_HOME=$ROOT/reports/served-ab NBA_FORECAST_ENVIRONMENT=production \
        NBA_FORECAST_DATABASE_URL=sqlite:///$STATE/predictions.db \
        NBA_FORECAST_REGISTRY_URL=file://$STATE/registry \
        NBA_FORECAST_GITOPS_REPO=file://$ROOT/reports/gitops-remote.git \
        $BIN/nba-forecast served-ab --season 2012 --count 40  # games the replay never served
}

step "data stats" $BIN/nba-forecast data stats
step "evaluate" $BIN/nba-forecast evaluate --out reports/evaluate
step "replay 2013-14 to 2014-15" $BIN/nba-forecast replay --seasons 2013-2014 --out reports/replay
step "pipeline run (local)" $BIN/nba-forecast pipeline run continuous_improvement --local \
    --root reports/pipeline-runs \
    --param "database_url=sqlite:///$STATE/predictions.db" \
    --param "registry_url=file://$STATE/registry" \
    --param "gitops_repo=$STATE/gitops" --param environment=production \
    --param as_of=2015-04-16T12:00:00Z
step "served A/B" served_ab

echo
echo "demo steps:"
for i in "${!NAMES[@]}"; do
    printf '  %-28s %5d s\n' "${NAMES[$i]}" "${SECONDS_TAKEN[$i]}"
done
printf '  %-28s %5d s\n' "total" $(($(date +%s) - START))
