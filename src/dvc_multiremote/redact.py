"""Remove secret values from anything we print or write."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dvc_multiremote.settings import Credentials

MASK = "***"


@dataclass(frozen=True)
class Redactor:
    """Replaces every known secret value with ``***``."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: list[str]) -> Redactor:
        # Longest first, so a secret that contains another is masked whole.
        return cls(tuple(sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)))

    @classmethod
    def from_credentials(cls, creds: Credentials | None) -> Redactor:
        return cls.of(secret_values(creds) if creds is not None else [])

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def json(self, data: Any) -> str:
        return self(json.dumps(data, indent=2)) + "\n"


def secret_values(creds: Credentials, *extra: str | None) -> list[str]:
    """Every value to mask: the credentials, ``extra`` (the GitHub token), and the base64
    ``user:token`` that basic auth sends to DagsHub."""
    values = list(creds.secret_values())
    values += [value for value in extra if value]
    if creds.dagshub_token is not None:
        token = creds.dagshub_token.get_secret_value()
        user = creds.dagshub_user.get_secret_value() if creds.dagshub_user else token
        values.append(base64.b64encode(f"{user}:{token}".encode()).decode())
    return [value for value in dict.fromkeys(values) if value]
