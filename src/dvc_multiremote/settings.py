"""What a run needs to know: options from the CLI or the Action, secrets from the environment."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dvc_multiremote.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dvc_multiremote.remotes.ranged import Streams

Command = Literal["verify", "pull", "push", "sync", "demo", "merge-reports"]
TRANSFER_JOBS = 32  # DagsHub's own client downloads with 32 threads and warns above that
CHECK_JOBS = 64  # a HEAD carries no body; halved whenever a remote answers 429 or 503
STREAMS = 8  # ranged GETs at once per large object (rclone: 4; s3fs under DVC: 4 x CPUs)
STREAMS_CUTOFF = 64 * 2**20  # from this size an object is split into ranges

_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``1GB`` -> 1000**3 bytes; units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (none means bytes)."""
    match = _SIZE.match(text)
    unit = (match.group("unit") or "b").lower() if match else ""
    if not match or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size like 500MB or 1GiB")
    return int(float(match.group("number")) * _UNITS[unit])


def parse_budget(items: list[str], option: str = "--budget") -> dict[str, int]:
    """``["backblaze=1GB"]`` -> ``{"backblaze": 1000000000}``; a one-sentence error naming
    ``option`` otherwise (``--budget``, ``--storage-limit``)."""
    budget: dict[str, int] = {}
    for item in items:
        name, sep, size = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{option} must look like backblaze=1GB, got {item!r}.")
        try:
            budget[name.strip()] = parse_size(size)
        except ValueError:
            raise UsageError(
                f"{option} {item!r} has no valid size; use units B, KB, MB, GB, KiB, MiB or GiB."
            ) from None
    return budget


def parse_shard(text: str) -> tuple[int, int]:
    """``2/4`` -> (2, 4), with 1 <= I <= N."""
    index, sep, count = text.partition("/")
    if sep and index.strip().isdigit() and count.strip().isdigit():
        i, n = int(index), int(count)
        if 1 <= i <= n:
            return i, n
    raise UsageError(f"--shard must look like I/N with 1 <= I <= N, got {text!r}.")


_REMOTE_ENV = re.compile(r"^DVC_REMOTE_(?P<rest>[A-Z0-9_]+)$")


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]
    return value


def remote_env_key(remote_name: str) -> str:
    """``DVC_REMOTE_<NAME>_`` prefix for a remote: upper-cased, other characters as ``_``."""
    return "DVC_REMOTE_" + re.sub(r"[^A-Z0-9]", "_", remote_name.upper()) + "_"


def scan_remote_env(environ: Mapping[str, str]) -> dict[str, SecretStr]:
    """Every non-empty ``DVC_REMOTE_*`` variable, values kept secret."""
    return {
        key: SecretStr(value)
        for key, value in environ.items()
        if _REMOTE_ENV.match(key) and value != ""
    }


class Credentials(BaseSettings):
    """Secrets and the hosts they may be sent to, read from the environment only."""

    model_config = SettingsConfigDict(
        case_sensitive=False, env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    dagshub_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DAGSHUB_TOKEN", "DAGSHUB_USER_TOKEN")
    )
    dagshub_user: SecretStr | None = Field(None, validation_alias="DAGSHUB_USER")
    b2_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("B2_APPLICATION_KEY_ID", "B2_KEY_ID")
    )
    b2_key: SecretStr | None = Field(None, validation_alias="B2_APPLICATION_KEY")
    dagshub_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["dagshub.com"], validation_alias="DAGSHUB_HOSTS"
    )
    b2_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*.backblazeb2.com"], validation_alias="B2_HOSTS"
    )
    remote_options: dict[str, SecretStr] = Field(
        default_factory=lambda: scan_remote_env(os.environ), exclude=True
    )

    _split_hosts = field_validator("dagshub_hosts", "b2_hosts", mode="before")(_split_list)

    def secret_values(self) -> list[str]:
        """Every secret value this run holds, for masking and for leak checks."""
        values = [
            s.get_secret_value()
            for s in (self.dagshub_token, self.dagshub_user, self.b2_key_id, self.b2_key)
            if s is not None
        ]
        values += [s.get_secret_value() for s in self.remote_options.values()]
        return [v for v in values if v]


class Settings(BaseModel):
    """Options of one run, filled by the CLI (and, later, by the Action's inputs)."""

    model_config = {"arbitrary_types_allowed": True}

    command: Command
    repo: Path = Path(".")
    remotes: list[str] | None = None
    jobs: int | None = Field(None, ge=1)
    streams: int = Field(STREAMS, ge=1)
    streams_cutoff: int = Field(STREAMS_CUTOFF, ge=0)
    json_path: Path | None = None
    markdown_path: Path | None = None
    verbose: bool = False
    quiet: bool = False
    targets: list[str] = Field(default_factory=list)
    rev: str | None = None
    range: str | None = None
    all_commits: bool = False
    dry_run: bool = False
    budget: dict[str, int] = Field(default_factory=dict)
    storage_limit: dict[str, int] = Field(default_factory=dict)
    prefer_source: list[str] | None = None
    shard: tuple[int, int] | None = None
    keep: Path | None = None
    credentials: Credentials = Field(default_factory=Credentials)

    _split_remotes = field_validator("remotes", "prefer_source", mode="before")(_split_list)

    @field_validator("budget", "storage_limit", mode="before")
    @classmethod
    def _sizes(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            value = _split_list(value)
        if isinstance(value, list):
            option = "--" + str(info.field_name).replace("_", "-")
            return parse_budget([str(item) for item in value], option)
        return value

    @field_validator("shard", mode="before")
    @classmethod
    def _shard(cls, value: object) -> object:
        return parse_shard(value) if isinstance(value, str) else value

    @field_validator("streams_cutoff", mode="before")
    @classmethod
    def _cutoff(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_size(value)
            except ValueError:
                raise UsageError(
                    f"--streams-cutoff must be a size like 64MB or 1GiB, got {value!r}."
                ) from None
        return value

    @property
    def ranged(self) -> Streams:
        """How large objects are downloaded: ``--streams`` ranges at once from the cutoff."""
        from dvc_multiremote.remotes.ranged import Streams

        return Streams(self.streams, self.streams_cutoff)

    @field_validator("range")
    @classmethod
    def _range_shape(cls, value: str | None) -> str | None:
        if value is not None:
            base, sep, head = value.partition("..")
            if not sep or not base or not head or head.startswith("."):
                raise UsageError(f"--range must look like BASE..HEAD, got {value!r}.")
        return value

    @property
    def transfer_jobs(self) -> int:
        """Downloads or uploads in flight per remote: ``--jobs``, else 32."""
        return self.jobs or TRANSFER_JOBS

    @property
    def check_jobs(self) -> int:
        """HEADs in flight per remote (no body, cheap for any server): ``--jobs``, else 64."""
        return self.jobs or CHECK_JOBS

    @property
    def scope(self) -> Literal["workspace", "rev", "range", "all-commits"]:
        if self.rev:
            return "rev"
        if self.range:
            return "range"
        if self.all_commits:
            return "all-commits"
        return "workspace"
