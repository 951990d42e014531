"""The DVC remotes a run works on: names, kinds, hosts, in the order the user asked for."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from dvc_multiremote.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

RemoteKind = Literal["s3", "http", "local", "other"]


@dataclass(frozen=True)
class RemoteSpec:
    """One configured remote, without any of its credentials."""

    name: str
    url: str
    kind: RemoteKind
    endpoint: str | None = None
    versioned: str | None = None  # ``version_aware`` or ``worktree``, when set

    @property
    def display_url(self) -> str:
        """The URL safe to print: no user, no password, no query."""
        text = _strip_userinfo(self.url)
        if self.endpoint:
            text += f" (endpoint {_strip_userinfo(self.endpoint)})"
        return text

    @property
    def netloc(self) -> tuple[str, int | None] | None:
        """Host and port that receive requests (the endpoint's for S3), if any."""
        target = self.endpoint if self.kind == "s3" else self.url if self.kind == "http" else None
        if not target:
            return None
        parts = urlsplit(target)
        if not parts.hostname:
            return None
        return parts.hostname.lower(), parts.port


_VERSIONED = ("version_aware", "worktree")


def _refuse_versioned(specs: list[RemoteSpec], available: list[RemoteSpec]) -> list[RemoteSpec]:
    """A cloud-versioned remote keeps objects at workspace paths, not DVC's content-addressed
    layout: checking it for ``files/md5/...`` would call every object missing."""
    for spec in specs:
        if spec.versioned:
            others = ",".join(s.name for s in available if not s.versioned) or "NAME"
            raise UsageError(
                f"Remote {spec.name!r} is cloud-versioned ({spec.versioned} = true): its "
                "objects live at workspace paths, which dvc-multiremote does not check.",
                fix=f"Leave it out with --remotes {others} (Action input `remotes`).",
            )
    return specs


_UNSUPPORTED = re.compile(r"Unsupported URL type (\w+)://.*data\['remote'\]\['([^']+)'\]")


def config_error(root: Path, exc: Exception) -> UsageError:
    """A DVC config error as one sentence; a ``b2://`` remote URL gets the fix."""
    found = _UNSUPPORTED.search(str(exc))
    if found and found.group(1).lower() == "b2":
        name = found.group(2)
        url = _strip_userinfo(_raw_remote_url(root / ".dvc", name) or "b2://BUCKET/PATH")
        bucket_path = url.split("://", 1)[1]
        quoted = shlex.quote(name)
        return UsageError(
            f"Remote {name!r} has url {url}, which DVC cannot use: Backblaze B2 is reached "
            "through its S3 API.",
            fix=(
                f"Run `dvc remote modify {quoted} url s3://{bucket_path}` and `dvc remote modify "
                f"{quoted} endpointurl https://s3.<region>.backblazeb2.com` (your bucket's "
                "region, e.g. us-west-004)."
            ),
        )
    return UsageError(f"The DVC config of {root} is invalid: {exc}")


def _raw_remote_url(dvc_dir: Path, name: str) -> str | None:
    """The ``url`` a config file gives a remote, read as text (DVC's parser refuses it)."""
    from configobj import ConfigObj

    url = None
    for filename in ("config", "config.local"):
        path = dvc_dir / filename
        if path.is_file():
            section = ConfigObj(str(path)).get(f'remote "{name}"') or {}
            url = section.get("url", url)
    return str(url) if url else None


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or parts.hostname is None:
        return url
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _kind(url: str) -> RemoteKind:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "s3":
        return "s3"
    if scheme in ("http", "https"):
        return "http"
    if scheme in ("", "file") or len(scheme) == 1:  # a Windows drive letter looks like a scheme
        return "local"
    return "other"


def configured_remotes(config: Any) -> list[RemoteSpec]:
    """Remotes of a DVC config, the default one first, the others in the order listed."""
    default = config.get("core", {}).get("remote")
    specs = [
        RemoteSpec(
            name=name,
            url=str(section.get("url", "")),
            kind=_kind(str(section.get("url", ""))),
            endpoint=section.get("endpointurl"),
            versioned=next((o for o in _VERSIONED if section.get(o)), None),
        )
        for name, section in config.get("remote", {}).items()
    ]
    specs.sort(key=lambda spec: spec.name != default)
    return specs


def select_remotes(config: Any, wanted: list[str] | None) -> list[RemoteSpec]:
    """The remotes named by ``--remotes`` (in that order), or all of them."""
    available = configured_remotes(config)
    if not available:
        raise UsageError(
            "This DVC project has no remotes configured.",
            fix="Add one with `dvc remote add NAME URL`.",
        )
    if not wanted:
        return _refuse_versioned(available, available)
    by_name = {spec.name: spec for spec in available}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        names = ", ".join(spec.name for spec in available)
        raise UsageError(
            f"Unknown remote {unknown[0]!r} in --remotes; the configured remotes are: {names}."
        )
    seen: dict[str, RemoteSpec] = {}
    for name in wanted:
        seen.setdefault(name, by_name[name])
    return _refuse_versioned(list(seen.values()), available)
