"""Remove secret values from anything we print or write."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from dvc_multiremote.settings import Credentials

MASK = "***"


@dataclass(frozen=True)
class Redactor:
    """Replaces every known secret value with ``***``."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def from_credentials(cls, creds: Credentials | None) -> Redactor:
        values = creds.secret_values() if creds is not None else []
        if creds is not None and creds.dagshub_token is not None:
            # Basic auth sends base64("user:token"); mask that form too.
            token = creds.dagshub_token.get_secret_value()
            user = creds.dagshub_user.get_secret_value() if creds.dagshub_user else token
            values.append(base64.b64encode(f"{user}:{token}".encode()).decode())
        # Longest first, so a secret that contains another is masked whole.
        return cls(tuple(sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def json(self, data: Any) -> str:
        return self(json.dumps(data, indent=2)) + "\n"
