# syntax=docker/dockerfile:1
#
# liveroom: one node per container. Build from the repository root:
#
#     docker build -t liveroom .
#     docker run -p 8080:8080 -v liveroom-data:/var/lib/liveroom/data \
#         -v liveroom-media:/var/lib/liveroom/media liveroom
#
# Several nodes, PostgreSQL, Redis, nginx and coturn: deploy/compose.yaml. WebRTC audio needs
# more than the HTTP port (see docs/deployment.md, "WebRTC and UDP"): aiortc binds every ICE
# candidate to an ephemeral UDP port the kernel picks (aioice offers no setting to restrict the
# range), so publish media through TURN (deploy/compose.yaml) or run with `--network host`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: a virtualenv with liveroom and its dependencies --------------------------------
FROM ${PYTHON_IMAGE} AS builder

# Compilers only for a dependency that has no wheel for the target platform. The runtime
# dependencies ship manylinux wheels with their native libraries inside: PyAV bundles FFmpeg,
# libopus and the rest in av.libs/ (it needs only libc, libm, zlib and libstdc++ from the
# system, all in the slim image), pylibsrtp bundles libsrtp, cryptography its OpenSSL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libffi-dev \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv

WORKDIR /src
# README.md is the package's long description (pyproject.toml `readme`): the build needs it.
COPY pyproject.toml README.md ./
COPY liveroom ./liveroom
RUN pip install . \
    && cd / && python -c "import av, aiortc, asyncpg, liveroom.app"

# ---- runtime: slim Python, the virtualenv, the web client; no compilers ----------------------
FROM ${PYTHON_IMAGE} AS runtime

# Settings are LIVEROOM_* variables rather than flags in CMD, so `docker run -e` and compose can
# change any of them (a flag would win over the environment). The HEALTHCHECK follows
# LIVEROOM_PORT: change the port with the variable, not with --port.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    LIVEROOM_PORT=8080 \
    LIVEROOM_DATA_DIR=/var/lib/liveroom/data \
    LIVEROOM_MEDIA_DIR=/var/lib/liveroom/media \
    LIVEROOM_WEB_DIR=/opt/liveroom/web

RUN groupadd --system --gid 10001 liveroom \
    && useradd --system --uid 10001 --gid liveroom --home-dir /var/lib/liveroom \
        --no-create-home --shell /usr/sbin/nologin liveroom \
    && mkdir -p /var/lib/liveroom/data /var/lib/liveroom/media \
    && chown -R liveroom:liveroom /var/lib/liveroom

COPY --from=builder /opt/venv /opt/venv
# The web client is not part of the Python package: served from LIVEROOM_WEB_DIR.
COPY web /opt/liveroom/web

USER liveroom
WORKDIR /var/lib/liveroom

# data: the secret (unless LIVEROOM_SECRET is given) and the SQLite file (unless
# LIVEROOM_DATABASE_URL names PostgreSQL). media: uploads, live HLS and replays.
VOLUME ["/var/lib/liveroom/data", "/var/lib/liveroom/media"]

# HTTP: the web client, /api, /socket.io, /hls, /media, /healthz. WebRTC media uses UDP ports
# the kernel picks at each connection (not configurable in aioice): see the header above.
EXPOSE 8080/tcp

# Python is in the image already: no curl. Non-2xx, refused or slow (> 4 s) is unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LIVEROOM_PORT', '8080') + '/healthz', timeout=4).close()"]

# SIGTERM (Docker's stop signal) is a graceful shutdown: clients are told, data flushed, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["liveroom"]
CMD ["serve", "--host", "0.0.0.0"]
