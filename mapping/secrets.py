"""Secret references in config: `{env: NAME}` or `{prefect_secret: BLOCK}`.

A reference names where a secret lives and is resolved only when a connector needs it, so a
config can be validated, printed and stored without the secret ever being in memory.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, SecretStr, Tag

MASK = "****"
_RESOLVED: set[str] = set()


def resolved_secrets() -> frozenset[str]:
    """Every secret value resolved in this process, for redaction of logs and errors."""
    return frozenset(_RESOLVED)


def _remember(value: str) -> SecretStr:
    if len(value) >= 4:
        _RESOLVED.add(value)
    return SecretStr(value)


class SecretUnavailable(LookupError):
    """The referenced secret cannot be read (unset variable, missing Prefect block)."""


class EnvSecret(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str

    def resolve(self) -> SecretStr:
        value = os.environ.get(self.env)
        if not value:
            raise SecretUnavailable(f"environment variable {self.env} is not set")
        return _remember(value)

    def describe(self) -> str:
        return f"env {self.env}"

    def __str__(self) -> str:
        return MASK


class PrefectSecret(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prefect_secret: str

    def resolve(self) -> SecretStr:
        from prefect.blocks.system import Secret

        try:
            block: Any = Secret.load(self.prefect_secret)
        except ValueError as exc:
            raise SecretUnavailable(
                f"Prefect Secret block {self.prefect_secret!r} not found"
            ) from exc
        value: Any = block.get()
        return _remember(str(value))

    def describe(self) -> str:
        return f"Prefect Secret block {self.prefect_secret}"

    def __str__(self) -> str:
        return MASK


def _secret_kind(value: Any) -> str | None:
    if isinstance(value, EnvSecret | PrefectSecret):
        return type(value).__name__
    if isinstance(value, dict):
        if "env" in value:
            return "EnvSecret"
        if "prefect_secret" in value:
            return "PrefectSecret"
    return None


SecretRef = Annotated[
    Annotated[EnvSecret, Tag("EnvSecret")] | Annotated[PrefectSecret, Tag("PrefectSecret")],
    Discriminator(
        _secret_kind,
        custom_error_type="secret_ref",
        custom_error_message=(
            "secrets are never written in the config: use {env: NAME} or {prefect_secret: BLOCK}"
        ),
    ),
]
