# ttlp container image (DESIGN §9).
#
#   docker build -t ttlp:local .
#   docker run --rm -p 3000:3000 ttlp:local                      # embedded SQLite + in-process bus
#   docker run --rm ttlp:local run --roles normalize             # one role (needs REDIS_URL)
#   docker run --rm ttlp:local migrate                           # apply migrations (DATABASE_URL)
#
# Two stages: the builder installs the dependencies and the ttlp wheel into a virtualenv at
# /opt/venv (compilers stay in the builder); the final stage copies only that virtualenv onto the
# same slim base, so its interpreter paths stay valid. The process runs as the unprivileged user
# `ttlp` (uid 10001). Python handles SIGTERM itself (graceful shutdown of the roles), so the
# entrypoint is exec form without a shell; docker-compose.yml adds `init: true` to reap zombies.

# Pinned by tag (Python minor version and Debian release); both stages must use the same image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler only for dependencies that ship no wheel for this platform; never in the final image.
# Unpinned on purpose: build-essential comes from the base image's (pinned) Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip wheel

WORKDIR /build

# Dependencies first, from pyproject.toml alone, so editing the source does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && /opt/venv/bin/pip install -r requirements.txt

# Everything the wheel contains (see [tool.hatch.build.targets.wheel] in pyproject.toml).
COPY src ./src
COPY contracts ./contracts
COPY alembic ./alembic
COPY tests/fixtures/raw-frames.ndjson tests/fixtures/raw-frames-protobuf.ndjson ./tests/fixtures/
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-deps /wheels/ttlp-*.whl \
    && /opt/venv/bin/ttlp --version

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ttlp" \
      org.opencontainers.image.description="TikTok LIVE platform: ingest, normalize, store, replay, serve." \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --system --gid 10001 ttlp \
    && useradd --system --uid 10001 --gid ttlp --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin ttlp \
    && mkdir -p /app /data \
    && chown ttlp:ttlp /app /data

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TTLP_DATA_DIR=/data

WORKDIR /app
# Numeric, so that runtimes which enforce "non-root" (Kubernetes runAsNonRoot) can verify it.
USER 10001:10001

# The embedded default (no DATABASE_URL) keeps its SQLite file here.
VOLUME ["/data"]

# The api role (API_PORT, default 3000).
EXPOSE 3000

# No curl in the slim image: the standard library does the request, on API_PORT (default 3000,
# like ${API_PORT:-3000}). urlopen raises, so python exits 1, on a non-2xx answer (503 when Redis
# or the database is unreachable) and on a refused connection. Exec form: no shell involved.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % (os.environ.get('API_PORT') or '3000'), timeout=4)"]

ENTRYPOINT ["ttlp"]
CMD ["run", "--roles", "all"]
