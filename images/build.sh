#!/usr/bin/env bash
# `make images`: build the CPU and CUDA images with podman. No container registry is
# reachable on the development machines, so by default the images are built on stand-in
# bases made here from Debian (debootstrap), under their own localhost/ names and passed as
# the Dockerfiles' BASE_IMAGE (never under the upstream tags: a stand-in must not pass for
# the real base). NBA_FORECAST_PULL_BASES=1 builds on the real bases (pulled), as images
# to push must be: the GPU stand-in holds the CPU torch wheel, not CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."

export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/images/containers.conf}"
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
IMAGE="ghcr.io/nba-forecast/nba-forecast:$VERSION"
GPU_IMAGE="ghcr.io/nba-forecast/nba-forecast-gpu:$VERSION"
PYTHON_BASE=localhost/nba-forecast-base/python:3.11-bookworm
TORCH_BASE=localhost/nba-forecast-base/pytorch:2.13.0-cpu
DEBIAN_BASE=localhost/nba-forecast-base/debian:bookworm-minbase
WORK=build/images
mkdir -p "$WORK"

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "== installing ${missing[*]} (Debian packages podman buildah runc debootstrap)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc debootstrap >/dev/null
    else
        echo "error: missing ${missing[*]}; install: apt-get install podman buildah runc debootstrap" >&2
        exit 2
    fi
fi

# the build reaches PyPI; the torch wheel on disk and the host's CA bundle go in read-only
build_args=(--isolation chroot --network host)
if [[ -n "${PIP_FIND_LINKS:-}" && -d "${PIP_FIND_LINKS}" ]]; then
    build_args+=(-v "$PIP_FIND_LINKS:$PIP_FIND_LINKS:ro" --build-arg "PIP_FIND_LINKS=$PIP_FIND_LINKS")
    # PyTorch's own index is unreachable here and pip would retry it for every package
    build_args+=(--build-arg TORCH_INDEX=)
fi
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    build_args+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro
                 --build-arg PIP_CERT=/etc/ssl/host-ca.crt)
fi

timed() {  # timed LABEL COMMAND...: run, then print how long it took
    local label=$1 start=$SECONDS
    shift
    "$@"
    echo "== $label: $((SECONDS - start)) s" >&2
}

if [[ "${NBA_FORECAST_PULL_BASES:-0}" == 1 ]]; then
    # the bases the Dockerfiles name, pulled fresh
    PYTHON_BASE=docker.io/library/python:3.11.7-slim-bookworm
    TORCH_BASE=docker.io/pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
    timed "pull $PYTHON_BASE" podman pull -q "$PYTHON_BASE" >/dev/null
    timed "pull $TORCH_BASE" podman pull -q "$TORCH_BASE" >/dev/null
else
    if ! podman image exists "$PYTHON_BASE"; then
        if ! podman image exists "$DEBIAN_BASE"; then
            rm -rf "$WORK/rootfs"
            timed "debootstrap bookworm" debootstrap --variant=minbase bookworm "$WORK/rootfs" \
                http://deb.debian.org/debian >"$WORK/debootstrap.log"
            tar -C "$WORK/rootfs" -c . | podman import - "$DEBIAN_BASE" >/dev/null
            rm -rf "$WORK/rootfs"
        fi
        timed "stand-in $PYTHON_BASE" podman build "${build_args[@]}" -q \
            --build-arg "DEBIAN_BASE=$DEBIAN_BASE" \
            -f images/base/python.Dockerfile -t "$PYTHON_BASE" images/base >/dev/null
    fi
    if ! podman image exists "$TORCH_BASE"; then
        timed "stand-in $TORCH_BASE" podman build "${build_args[@]}" -q \
            --build-arg "PYTHON_BASE=$PYTHON_BASE" \
            -f images/base/pytorch.Dockerfile -t "$TORCH_BASE" images/base >/dev/null
    fi
    echo "   stand-in bases (no registry): the GPU image holds CPU torch; do not push it" >&2
fi

GIT_SHA=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ $GIT_SHA != unknown ]] && [[ -n $(git status --porcelain -- nba_forecast components pipelines pyproject.toml images) ]]; then
    GIT_SHA="$GIT_SHA-dirty"
fi
for spec in "Dockerfile:$IMAGE:$PYTHON_BASE" "Dockerfile.gpu:$GPU_IMAGE:$TORCH_BASE"; do
    IFS=: read -r file repo version base_repo base_tag <<<"$spec"
    tag="$repo:$version" base="$base_repo:$base_tag"
    timed "build $tag" podman build "${build_args[@]}" -q -f "images/$file" \
        --build-arg "BASE_IMAGE=$base" --label "nba-forecast.base=$base" \
        --build-arg "GIT_SHA=$GIT_SHA" --build-arg "IMAGE_NAME=$tag" -t "$tag" . >/dev/null
    podman run --rm "$tag" nba-forecast --help >/dev/null
    echo "   $tag $(podman image inspect --format '{{.Id}}' "$tag") (git $GIT_SHA, base $base, runs nba-forecast --help)"
done
