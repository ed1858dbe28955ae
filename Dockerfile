# shiftd container image: `docker build -t shiftd:0.1.0 .`
# Runs as a non-root user and works with a read-only root filesystem (see deploy/).

# --- build a wheel ---------------------------------------------------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 shiftd \
 && useradd --system --uid 10001 --gid shiftd --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shiftd
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
# A default configuration; in Kubernetes the ConfigMap in deploy/ is mounted over /etc/shiftd.
COPY config/shiftd.yaml /etc/shiftd/shiftd.yaml
USER 10001:10001
EXPOSE 8090
ENTRYPOINT ["shiftd", "run", "--config", "/etc/shiftd/shiftd.yaml"]
