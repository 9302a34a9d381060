# The registry's image: one image for the server (the default command), the schema migration
# (`incident-registry-server migrate`), the projection worker (`incident-registry-worker`)
# and the operator CLI (`incidents ...`). Build from the repository root:
#
#   docker build -t incident-registry .
#
# BuildKit (Docker's default builder since 23.0) is needed for the pip cache mount. Both
# stages start from the same base, so that the virtualenv copied from the first finds its
# interpreter at the same path in the second.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VENV=/opt/venv
WORKDIR /src
# The third-party dependencies first, from the two pyproject files alone: this layer is
# rebuilt only when they (or the install scripts) change. pip's cache is a build-time mount,
# never part of a layer.
COPY pyproject.toml ./pyproject.toml
COPY clients/pyproject.toml ./clients/pyproject.toml
COPY deploy/docker/ ./deploy/docker/
RUN --mount=type=cache,target=/root/.cache/pip \
    sh deploy/docker/install-dependencies.sh "$VENV"
# Then the two packages, built from the sources with what is installed: nothing is resolved
# or downloaded again.
COPY README.md ./README.md
COPY service/ ./service/
COPY projections/ ./projections/
COPY clients/src/ ./clients/src/
RUN sh deploy/docker/install-packages.sh "$VENV"

FROM ${PYTHON_IMAGE} AS runtime
# A fixed, unprivileged uid and gid, so that Kubernetes' runAsNonRoot can verify it and
# volumes can be prepared for it. /var/lib/incidents holds the SQLite files of the default
# store; it is the only place the registry writes to.
RUN groupadd --system --gid 10001 incidents \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /var/lib/incidents --no-create-home --shell /usr/sbin/nologin incidents \
    && install --directory --owner=10001 --group=10001 --mode=0750 /var/lib/incidents
# Only the virtualenv: no compilers, pip cache or sources beyond what is installed in it.
COPY --from=build /opt/venv /opt/venv
# Plaintext on 0.0.0.0 and no authentication, explicitly: terminate TLS in front of the
# container, or mount certificates and set INCIDENTS_TLS_CERT_FILE / _KEY_FILE (and
# INCIDENTS_AUTH) to have the server do TLS and authenticate callers itself.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    INCIDENTS_LISTEN_ADDRESS=0.0.0.0:50051 \
    INCIDENTS_LOG_FORMAT=json \
    INCIDENTS_SQLITE_PATH=/var/lib/incidents/incidents.sqlite \
    INCIDENTS_METRICS_HOST=0.0.0.0 \
    INCIDENTS_METRICS_PORT=9464 \
    INCIDENTS_ALLOW_PLAINTEXT=true \
    INCIDENTS_AUTH=none
WORKDIR /var/lib/incidents
VOLUME ["/var/lib/incidents"]
USER 10001:10001
# gRPC (plaintext unless INCIDENTS_TLS_* are set) and Prometheus metrics at /metrics.
EXPOSE 50051 9464
# grpc.health.v1 "readiness" on the listen address; the worker, which serves no gRPC,
# overrides it (deploy/compose.yaml) or is probed on its metrics port (deploy/k8s).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["incident-registry-health"]
CMD ["incident-registry-server"]
