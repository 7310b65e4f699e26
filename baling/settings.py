"""What the ``baling`` command takes from the environment, read in one place.

The operator commands that work on central's files without running it
(``audit``, ``backup``, ``restore``, ``ca``) read central's own variables
(``CENTRAL_DATABASE_URL``, ``CENTRAL_DATA_DIR``, ``CENTRAL_CA_PASSPHRASE``)
through :class:`CentralFiles`, a part of central's settings that needs no
JWT secret; the secrets an operator types (``BALING_PASSWORD``,
``BALING_CA_ROOT_PASSPHRASE``) come through :class:`OperatorSecrets`, so
scripts can pass them without a prompt. ``main()`` builds both and passes
them down; nothing else in the command reads the environment. Running
central itself is :class:`central.settings.CentralSettings`' business, and a
node's settings are :class:`edge.settings.NodeSettings`'.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr  # noqa: TC002 - pydantic reads annotations at run time
from pydantic_settings import BaseSettings, SettingsConfigDict


class CentralFiles(BaseSettings):
    """Where central keeps its records, for the commands that open them directly."""

    model_config = SettingsConfigDict(env_prefix="CENTRAL_", extra="ignore")

    database_url: str | None = None
    data_dir: Path = Path("data")
    ca_passphrase: SecretStr | None = None

    def issuing_passphrase(self) -> bytes | None:
        """The issuing CA key's passphrase as bytes (None: the key is not encrypted)."""
        if self.ca_passphrase is None or not self.ca_passphrase.get_secret_value():
            return None
        return self.ca_passphrase.get_secret_value().encode()


class OperatorSecrets(BaseSettings):
    """Secrets an operator may give in the environment instead of at a prompt."""

    model_config = SettingsConfigDict(env_prefix="BALING_", extra="ignore")

    password: SecretStr | None = None
    ca_root_passphrase: SecretStr | None = None


def given(secret: SecretStr | None) -> str | None:
    """A secret's value, or None where it is unset or empty (then ask)."""
    if secret is None or not secret.get_secret_value():
        return None
    return secret.get_secret_value()
