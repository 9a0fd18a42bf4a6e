# syntax=docker/dockerfile:1
# One image for every tradefleet component: the entrypoint is the `tradefleet` console
# script and each component is one of its commands (operator, risk, recorder, exsim,
# marketdata, bot). Build: `make image` (docker build -t tradefleet:dev .).

# -- build: install the project and its dependencies into a virtualenv ------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Metadata first: the dependency layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
COPY tradefleet/ tradefleet/
COPY exsim/ exsim/
COPY workers/ workers/
COPY operator/ operator/
RUN pip install --no-cache-dir . \
    && tradefleet --help > /dev/null

# -- runtime: the virtualenv, the bundled market data, a non-root user -----------------
FROM python:3.11-slim
LABEL org.opencontainers.image.title="tradefleet" \
      org.opencontainers.image.description="Kubernetes-native fleet of crypto trading bots: operator, risk service, recorder, exsim, market data, bot worker" \
      org.opencontainers.image.licenses="Apache-2.0"
# UID/GID 10001: the pods' runAsUser (tradefleet.operator.config.RUN_AS_USER, the chart).
RUN groupadd --system --gid 10001 tradefleet \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin tradefleet
COPY --from=build /opt/venv /opt/venv
# The real Binance sample exsim replays (`tradefleet exsim --data /data/binance-um`);
# owned by root and read-only to the process.
COPY data/ /data/
# Read-only root filesystem in the pods: nothing writes outside /tmp (an emptyDir).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
WORKDIR /tmp
EXPOSE 9001 9002 9010 9108 9109 8080
ENTRYPOINT ["tradefleet"]
CMD ["--help"]
