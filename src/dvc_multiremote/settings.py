"""What a run needs to know: options from the CLI or the Action, secrets from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dvc_multiremote.errors import UsageError

Command = Literal["verify", "demo"]
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
    json_path: Path | None = None
    markdown_path: Path | None = None
    verbose: bool = False
    quiet: bool = False
    targets: list[str] = Field(default_factory=list)
    rev: str | None = None
    range: str | None = None
    all_commits: bool = False
    keep: Path | None = None
    credentials: Credentials = Field(default_factory=Credentials)

    _split_remotes = field_validator("remotes", mode="before")(_split_list)

    @field_validator("range")
    @classmethod
    def _range_shape(cls, value: str | None) -> str | None:
        if value is not None:
            base, sep, head = value.partition("..")
            if not sep or not base or not head or head.startswith("."):
                raise UsageError(f"--range must look like BASE..HEAD, got {value!r}.")
        return value

    @property
    def http_jobs(self) -> int:
        """Concurrency for per-object requests (HEAD/GET)."""
        return self.jobs or 16

    @property
    def scope(self) -> Literal["workspace", "rev", "range", "all-commits"]:
        if self.rev:
            return "rev"
        if self.range:
            return "range"
        if self.all_commits:
            return "all-commits"
        return "workspace"
