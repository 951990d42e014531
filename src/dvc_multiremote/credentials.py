"""Credentials from the environment, bound to hosts, written to an ephemeral ``config.local``."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from pydantic import SecretStr

from dvc_multiremote.settings import Credentials, remote_env_key
from dvc_multiremote.signals import sigterm_ignored, sigterm_raises

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dvc_multiremote.remotes.spec import RemoteSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grant:
    """Options (secret values) that one remote receives, and where they came from."""

    remote: str
    source: str
    options: dict[str, SecretStr] = field(default_factory=dict)


def host_matches(netloc: tuple[str, int | None] | None, patterns: list[str]) -> bool:
    """Whether a host (and port) matches one of the glob patterns (``host`` or ``host:port``)."""
    if netloc is None:
        return False
    host, port = netloc
    for given in patterns:
        pattern = given.lower()
        subject = f"{host}:{port}" if ":" in pattern else host
        if fnmatchcase(subject, pattern):
            return True
    return False


def plan_grants(specs: list[RemoteSpec], creds: Credentials) -> tuple[list[Grant], list[str]]:
    """Which remote gets which credentials; warnings for remotes left without them."""
    grants: list[Grant] = []
    warnings: list[str] = []
    token = creds.dagshub_token
    user = creds.dagshub_user or token
    have_b2 = creds.b2_key_id is not None and creds.b2_key is not None
    for spec in specs:
        explicit = _explicit_options(spec, creds)
        if explicit:
            grants.append(Grant(spec.name, "DVC_REMOTE_* variables", explicit))
        on_dagshub = host_matches(spec.netloc, creds.dagshub_hosts)
        on_b2 = spec.kind == "s3" and host_matches(spec.netloc, creds.b2_hosts)
        options: dict[str, SecretStr] = {}
        if on_b2 and have_b2:
            assert creds.b2_key_id is not None
            assert creds.b2_key is not None
            options = {"access_key_id": creds.b2_key_id, "secret_access_key": creds.b2_key}
            source = "B2 keys"
        elif on_dagshub and token is not None and user is not None:
            source = "DagsHub token"
            if spec.kind == "http":
                options = {"auth": SecretStr("basic"), "user": user, "password": token}
            elif spec.kind == "s3":
                options = {"access_key_id": token, "secret_access_key": token}
        if options:
            # Explicit DVC_REMOTE_* options win over the host-bound ones.
            options = {k: v for k, v in options.items() if k not in explicit}
            grants.append(Grant(spec.name, source, options))
        elif not explicit:
            unbound = _unbound_warning(spec, creds, have_b2)
            if unbound:
                warnings.append(unbound)
    return grants, warnings


def _explicit_options(spec: RemoteSpec, creds: Credentials) -> dict[str, SecretStr]:
    prefix = remote_env_key(spec.name)
    return {
        key[len(prefix) :].lower(): value
        for key, value in creds.remote_options.items()
        if key.startswith(prefix) and len(key) > len(prefix)
    }


def _unbound_warning(spec: RemoteSpec, creds: Credentials, have_b2: bool) -> str | None:
    host = spec.netloc[0] if spec.netloc else None
    if host is None:
        return None
    if spec.kind == "http" and creds.dagshub_token is not None:
        return (
            f"Remote {spec.name!r} ({host}) is not on DAGSHUB_HOSTS, so it gets no DagsHub "
            "credentials."
        )
    if spec.kind == "s3" and (have_b2 or creds.dagshub_token is not None):
        return (
            f"Remote {spec.name!r} ({host}) is on neither B2_HOSTS nor DAGSHUB_HOSTS, so it gets "
            "no B2 or DagsHub credentials."
        )
    return None


@contextmanager
def ephemeral_config_local(dvc_dir: Path, grants: list[Grant]) -> Iterator[None]:
    """Merge ``grants`` into ``.dvc/config.local`` and put back exactly what was there on exit.

    The restore runs on success, on any exception, on SIGINT and on SIGTERM.
    """
    if not grants:
        yield
        return
    path = dvc_dir / "config.local"
    before = path.read_bytes() if path.exists() else None
    mode = path.stat().st_mode & 0o777 if before is not None else None
    with sigterm_raises():
        try:
            _write_grants(dvc_dir, grants)
            yield
        finally:
            _restore(path, before, mode)


def _write_grants(dvc_dir: Path, grants: list[Grant]) -> None:
    from dvc.config import Config

    path = dvc_dir / "config.local"
    # Create it private before any secret lands in it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    config = Config(dvc_dir=str(dvc_dir), validate=False)
    with config.edit("local", validate=False) as local:
        for grant in grants:
            section = local.setdefault("remote", {}).setdefault(grant.remote, {})
            for option, value in grant.options.items():
                section[option] = value.get_secret_value()
    os.chmod(path, 0o600)


def _restore(path: Path, before: bytes | None, mode: int | None) -> None:
    with sigterm_ignored():
        if before is None:
            path.unlink(missing_ok=True)
        else:
            tmp = path.with_name(path.name + ".restore")
            tmp.write_bytes(before)
            os.chmod(tmp, mode if mode is not None else 0o600)
            os.replace(tmp, path)
