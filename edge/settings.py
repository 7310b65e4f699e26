"""Node settings: a TOML file plus ``BALING_NODE_*`` environment variables.

Built once in ``main()`` and passed down; library code never reads the
environment. The environment overrides the file, so one file can serve a
fleet and a pole can differ by one variable.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from edge.errors import SettingsError
from edge.protocol.messages import Kind


class NodeSettings(BaseSettings):
    """What every node needs to run; kinds subclass it for their devices."""

    model_config = SettingsConfigDict(env_prefix="BALING_NODE_", extra="forbid")

    device_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    kind: Kind
    data_dir: Path
    broker_host: str = "127.0.0.1"
    broker_port: Annotated[int, Field(ge=1, le=65535)] = 1883
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    inflight: Annotated[int, Field(ge=1, le=1000)] = 100
    outbox_max_bytes: Annotated[int, Field(ge=64 * 1024)] = 256 * 1024 * 1024
    heartbeat_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    version: str = "0.1.0"
    # Signed commands (Ed25519): keys trusted from the start (base64, raw 32
    # bytes); more arrive by a signed `trust_key` command (rotation).
    command_keys: list[str] = Field(default_factory=list)
    require_signed_commands: bool = False
    log_level: str = "INFO"
    # OTA: central's repositories (…/ota); the trust anchors are
    # <data_dir>/ota/image-root.json and director-root.json, pinned at
    # enrolment; `baling supervise` sets the slots directory.
    ota_url: str = ""
    ota_slots_dir: Path | None = None
    ota_settle_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    ota_deadline_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Let the environment override the TOML file's values."""
        del settings_cls, dotenv_settings
        return env_settings, init_settings, file_secret_settings


S = TypeVar("S", bound=NodeSettings)


def load_settings(cls: type[S], path: Path | None, **overrides: Any) -> S:  # noqa: ANN401
    """Build settings from a TOML file, the environment and ``overrides``.

    Raises:
        SettingsError: the file is missing or not TOML, or a value is invalid;
            the message names the file and the field.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"expected TOML in {path}, got: {exc}") from exc
    values.update(overrides)
    try:
        return cls(**values)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError(
            f"{path or 'settings'}: {where}: {first['msg']}, "
            f"got {first.get('input')!r:.80}"
        ) from exc
