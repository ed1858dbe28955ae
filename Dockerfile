# shiftd's container image:
#
#     docker build -t shiftd:0.1.0 .
#     docker build --build-arg PYTHON_IMAGE=python:3.11.11-slim-bookworm -t shiftd:0.1.0 .
#
# Two stages: the first builds shiftd's wheel and installs it with its dependencies into a
# virtualenv; the second copies only that virtualenv onto the same base, so no compiler, pip
# cache or source tree ships. The image runs as an unprivileged user (uid 10001) and needs no
# writable path: bytecode is compiled at build time and nothing is written at run time except
# to /tmp, which deploy/deployment.yaml mounts as an emptyDir under a read-only root.

# The base image, pinned to an exact Python patch release and Debian release; override it with
# --build-arg to move both stages together.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: the wheel and a virtualenv with everything shiftd imports -----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shiftd ./shiftd
RUN python -m venv /opt/shiftd \
 && /opt/shiftd/bin/pip install --no-compile . \
 && /opt/shiftd/bin/python -m compileall -q /opt/shiftd/lib

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="shiftd" \
      org.opencontainers.image.description="Argo-compatible canary Rollouts with Istio traffic shifting"
ENV PATH=/opt/shiftd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 shiftd \
 && useradd --system --uid 10001 --gid shiftd --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shiftd
# Owned by root and not writable by shiftd: the code cannot be changed from inside.
COPY --from=build /opt/shiftd /opt/shiftd
# A default configuration; in Kubernetes the ConfigMap in deploy/ is mounted over /etc/shiftd.
COPY config/shiftd.yaml /etc/shiftd/shiftd.yaml
USER 10001:10001
WORKDIR /tmp
EXPOSE 8090
STOPSIGNAL SIGTERM
CMD ["shiftd", "run", "--config", "/etc/shiftd/shiftd.yaml"]
