# The dvc-multiremote GitHub Action (a Docker container action: action.yml's `image: Dockerfile`).
# BASE is python:3.12-slim on GitHub; tests build it from a local Debian image (tests/test_container.py).
ARG BASE=python:3.12-slim
FROM ${BASE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DVC_NO_ANALYTICS=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/action/src

# git for DVC and for fetching a pull request's base; the runner's checkout belongs to another
# user than the container's root, so git must trust every directory.
# hadolint ignore=DL3008
RUN if ! command -v git >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends git ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && git config --system --add safe.directory '*' \
    && python3 -m venv /opt/venv

# Dependencies first, from the hashed lock, so this layer stays cached while the code changes.
COPY requirements/action.txt /action/requirements/action.txt
RUN pip install --require-hashes --no-deps -r /action/requirements/action.txt \
    && dvc --version

COPY src /action/src
COPY entrypoint /action/entrypoint
RUN python -c "import dvc_multiremote.action.main"

ENTRYPOINT ["/opt/venv/bin/python", "/action/entrypoint/main.py"]
