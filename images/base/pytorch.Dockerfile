# Stand-in for pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime (as
# localhost/nba-forecast-base/pytorch) where no registry can be
# pulled from: the Python stand-in plus torch 2.13.0 from the wheel on disk (a CPU build;
# the real base carries the CUDA build, README: "GPU image").
ARG PYTHON_BASE=localhost/nba-forecast-base/python:3.11-bookworm
FROM ${PYTHON_BASE}
ARG PIP_FIND_LINKS=
ARG PIP_CERT=
RUN pip install --no-cache-dir torch==2.13.0
