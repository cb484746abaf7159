#!/usr/bin/env bash
# `make images`: build the CPU and CUDA images with podman. No container registry is
# reachable on the development machines, so the bases the Dockerfiles name are built here
# from Debian (debootstrap) when podman does not have them; on a machine that can pull,
# podman pulls the real ones instead (NBA_FORECAST_PULL_BASES=1).
set -euo pipefail
cd "$(dirname "$0")/.."

export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/images/containers.conf}"
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
IMAGE="ghcr.io/nba-forecast/nba-forecast:$VERSION"
GPU_IMAGE="ghcr.io/nba-forecast/nba-forecast-gpu:$VERSION"
PYTHON_BASE=docker.io/library/python:3.11.7-slim-bookworm
TORCH_BASE=docker.io/pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
DEBIAN_BASE=localhost/debian:bookworm-minbase
WORK=build/images
mkdir -p "$WORK"

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "== installing ${missing[*]} (Debian packages podman buildah runc debootstrap)"
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

if ! podman image exists "$PYTHON_BASE"; then
    if [[ "${NBA_FORECAST_PULL_BASES:-0}" == 1 ]]; then
        timed "pull $PYTHON_BASE" podman pull "$PYTHON_BASE"
    else
        if ! podman image exists "$DEBIAN_BASE"; then
            rm -rf "$WORK/rootfs"
            timed "debootstrap bookworm" debootstrap --variant=minbase bookworm "$WORK/rootfs" \
                http://deb.debian.org/debian >"$WORK/debootstrap.log"
            tar -C "$WORK/rootfs" -c . | podman import - "$DEBIAN_BASE" >/dev/null
            rm -rf "$WORK/rootfs"
        fi
        timed "stand-in $PYTHON_BASE" podman build "${build_args[@]}" -q \
            -f images/base/python.Dockerfile -t "$PYTHON_BASE" images/base >/dev/null
    fi
fi
if ! podman image exists "$TORCH_BASE"; then
    if [[ "${NBA_FORECAST_PULL_BASES:-0}" == 1 ]]; then
        timed "pull $TORCH_BASE" podman pull "$TORCH_BASE"
    else
        timed "stand-in $TORCH_BASE" podman build "${build_args[@]}" -q \
            -f images/base/pytorch.Dockerfile -t "$TORCH_BASE" images/base >/dev/null
    fi
fi

GIT_SHA=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ $GIT_SHA != unknown ]] && ! git diff --quiet HEAD -- nba_forecast components pipelines pyproject.toml images; then
    GIT_SHA="$GIT_SHA-dirty"
fi
for spec in "Dockerfile:$IMAGE" "Dockerfile.gpu:$GPU_IMAGE"; do
    file=${spec%%:*} tag=${spec#*:}
    timed "build $tag" podman build "${build_args[@]}" -q -f "images/$file" \
        --build-arg "GIT_SHA=$GIT_SHA" --build-arg "IMAGE_NAME=$tag" -t "$tag" . >/dev/null
    podman run --rm "$tag" nba-forecast --help >/dev/null
    echo "   $tag $(podman image inspect --format '{{.Id}}' "$tag") (git $GIT_SHA, runs nba-forecast --help)"
done
