"""Bodies of the envelopes every node kind shares, and each kind's config schema.

State (retained, with the LWT), configuration (the device twin written by
central), command replies and faults. Central validates policy with
:func:`validate_config`, and a node validates what it receives the same way,
so both ends agree on what a valid configuration is. The kinds and their
config schemas are declared in :mod:`edge.protocol.kinds` (re-exported here).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.protocol.envelope import MAX_KEYS
from edge.protocol.errors import PayloadError
from edge.protocol.kinds import (
    KIND_CONFIG,
    KINDS,
    CameraConfig,
    HandheldConfig,
    Kind,
    NodeConfig,
    SignalConfig,
    SimConfig,
)

HealthStatus = Literal["ok", "degraded", "fault"]
M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Health(_Body):
    """A node's health summary: worst status plus the faults behind it."""

    status: HealthStatus = "ok"
    faults: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=64
    )
    outbox_depth: int = 0
    outbox_bytes: int = 0
    uptime_s: float = 0.0


class ConfigReport(_Body):
    """What a node did with the desired configuration it last received."""

    version: str = Field(default="", max_length=64)
    status: Literal["none", "applied", "refused"] = "none"
    reason: str = Field(default="", max_length=1000)


class StateBody(_Body):
    """Retained ``state``: online or not, what runs, and how it is."""

    online: bool
    kind: Kind
    version: str = Field(default="", max_length=64)
    health: Health = Field(default_factory=Health)
    config: ConfigReport = Field(default_factory=ConfigReport)
    # What the kind shows on its own screen (a handheld's SOS: "help is coming").
    detail: dict[str, Any] = Field(default_factory=dict, max_length=MAX_KEYS)


class ConfigBody(_Body):
    """Retained ``config``: the desired configuration and its version."""

    version: Annotated[str, Field(min_length=1, max_length=64)]
    values: dict[str, Any] = Field(max_length=MAX_KEYS)


class ReplyBody(_Body):
    """A command's result; ``ok`` false carries the refusal's reason."""

    command: str = Field(max_length=64)
    ok: bool
    error: str = Field(default="", max_length=4000)
    result: dict[str, Any] = Field(default_factory=dict, max_length=MAX_KEYS)


class FaultBody(_Body):
    """A fault raised or cleared by a node."""

    code: Annotated[str, Field(min_length=1, max_length=64)]
    active: bool
    detail: str = Field(default="", max_length=1000)


def parse_body(model: type[M], body: dict[str, Any]) -> M:
    """Validate an envelope body against ``model``.

    Raises:
        PayloadError: the body does not fit, naming the first offending field.
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = "body." + ".".join(str(p) for p in first["loc"])
        got = repr(first.get("input"))[:80]
        raise PayloadError(
            f"{field}: {first['msg']}, got {got}", field=field, got=got, reason="schema"
        ) from exc


def validate_config(kind: str, values: dict[str, Any]) -> NodeConfig:
    """Validate configuration values for a node kind.

    Raises:
        PayloadError: unknown kind, or a value the kind does not accept.
    """
    model = KIND_CONFIG.get(kind)
    if model is None:
        raise PayloadError(
            f"expected a kind of {sorted(KIND_CONFIG)}, got {kind!r}",
            field="kind",
            got=kind,
            reason="kind",
        )
    return parse_body(model, values)


def to_body(model: BaseModel) -> dict[str, Any]:
    """Dump a body model to JSON-ready values."""
    return model.model_dump(mode="json")


__all__ = [
    "KINDS",
    "KIND_CONFIG",
    "CameraConfig",
    "ConfigBody",
    "ConfigReport",
    "FaultBody",
    "HandheldConfig",
    "Health",
    "HealthStatus",
    "Kind",
    "NodeConfig",
    "ReplyBody",
    "SignalConfig",
    "SimConfig",
    "StateBody",
    "parse_body",
    "to_body",
    "validate_config",
]
