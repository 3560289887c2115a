# syntax=docker/dockerfile:1
# One image for every role: `docker run IMAGE serve` (default), `IMAGE sync`, `IMAGE db upgrade`, ...
# `serve` and `sync` never migrate the database: run `IMAGE db upgrade` (as the owner role) before a rollout.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN /opt/venv/bin/pip install --upgrade "pip>=25.1" \
    && /opt/venv/bin/pip install .

# version.json is baked in at build time (`/__version__`, Sentry release).
ARG GIT_COMMIT=unknown
ARG VERSION=v0.0.0
ARG IMAGE_TAG=
ARG BUILD_URL=
RUN python - <<'PY'
import json, os
json.dump(
    {
        "commit": os.environ["GIT_COMMIT"],
        "version": os.environ["VERSION"],
        "image_tag": os.environ.get("IMAGE_TAG") or None,
        "source": "https://github.com/mozilla-it/ctms-api",
        "build": os.environ.get("BUILD_URL") or None,
    },
    open("/src/version.json", "w"),
)
PY

FROM ${PYTHON_IMAGE} AS runtime
ARG CTMS_UID=10001
ARG CTMS_GID=10001
RUN groupadd --gid "${CTMS_GID}" app \
    && useradd --uid "${CTMS_UID}" --gid app --create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/version.json /app/version.json
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CTMS_VERSION_FILE=/app/version.json \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
USER ${CTMS_UID}:${CTMS_GID}
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/__lbheartbeat__\", timeout=4)"]
ENTRYPOINT ["ctms"]
CMD ["serve"]
