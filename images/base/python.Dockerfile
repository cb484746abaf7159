# Stand-in for python:3.11.7-slim-bookworm (as localhost/nba-forecast-base/python) where no registry can be pulled from: Debian
# bookworm (debootstrap, imported by images/build.sh) with its Python 3.11.
ARG DEBIAN_BASE=localhost/nba-forecast-base/debian:bookworm-minbase
FROM ${DEBIAN_BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python \
    && ln -s /usr/bin/pip3 /usr/local/bin/pip
# Debian marks its Python externally managed; an image has no other Python to protect
ENV PIP_BREAK_SYSTEM_PACKAGES=1
