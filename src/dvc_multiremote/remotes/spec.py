"""The DVC remotes a run works on: names, kinds, hosts, in the order the user asked for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from dvc_multiremote.errors import UsageError

RemoteKind = Literal["s3", "http", "local", "other"]


@dataclass(frozen=True)
class RemoteSpec:
    """One configured remote, without any of its credentials."""

    name: str
    url: str
    kind: RemoteKind
    endpoint: str | None = None

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
        return available
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
    return list(seen.values())
