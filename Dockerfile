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

# No git: the Action reads history and fetches a pull request's commits with dulwich, and DVC
# reads git through dulwich and pygit2 (`GIT_PYTHON_REFRESH`: GitPython, which scmrepo only
# imports for commands the Action never runs, stays quiet without a git binary). The runner's
# checkout belongs to another user than the container's root: libgit2 is told to trust it
# (action/workspace.py), and so is any reader of the system git config.
ENV GIT_PYTHON_REFRESH=quiet
RUN printf '[safe]\n\tdirectory = *\n' > /etc/gitconfig

# Dependencies first, from the hashed lock, so this layer stays cached while the code changes.
# In the same layer, drop what the Action never runs (README, "Image size and start-up"): DVC's
# experiment queue (celery and its stack), Hydra parameters, scmrepo's SSH transport,
# cryptography (PyJWT's RSA/EC keys, for GitHub App auth: the Action signs in with a token),
# botocore's models of every AWS service but S3, and last pip and setuptools themselves.
COPY requirements/action.txt /action/requirements/action.txt
RUN python3 -m venv /opt/venv \
    && pip install --require-hashes --no-deps -r /action/requirements/action.txt \
    && pip uninstall -y -q celery kombu billiard vine amqp dvc-task click-didyoumean \
        click-plugins click-repl prompt-toolkit wcwidth hydra-core omegaconf \
        antlr4-python3-runtime asyncssh cryptography \
    && find /opt/venv/lib/python3*/site-packages/botocore/data \
        -mindepth 1 -maxdepth 1 -type d ! -name s3 -exec rm -rf {} + \
    && dvc --version \
    && python -c "import dvc.repo, dvc_s3, dvc_http, dulwich.client, github, pydantic_settings, botocore.session as s; s.get_session().get_service_model('s3')" \
    && pip uninstall -y -q pip setuptools

COPY src /action/src
COPY entrypoint /action/entrypoint
RUN python -c "import dvc_multiremote.action.main"

ENTRYPOINT ["/opt/venv/bin/python", "/action/entrypoint/main.py"]
