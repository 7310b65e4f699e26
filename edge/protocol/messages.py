"""Bodies of the envelopes every node kind shares, and each kind's config schema.

State (retained, with the LWT), configuration (the device twin written by
central), command replies and faults. Central validates policy against
:data:`KIND_CONFIG`, and a node validates what it receives against the same
model, so both ends agree on what a valid configuration is. Kind-specific
capabilities extend :class:`NodeConfig` in later issues.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.protocol.envelope import MAX_KEYS
from edge.protocol.errors import PayloadError

Kind = Literal[
    "kiosk", "camera", "loop_detector", "signal_controller", "handheld", "sim"
]
KINDS: tuple[Kind, ...] = (
    "kiosk",
    "camera",
    "loop_detector",
    "signal_controller",
    "handheld",
    "sim",
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


class NodeConfig(BaseModel):
    """Settings every node kind accepts from central."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heartbeat_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    telemetry_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class SimConfig(NodeConfig):
    """The simulated event node used by ``baling up`` and the durability tests."""

    event_interval_s: Annotated[float, Field(ge=0.0, le=3600)] = 5.0


class HandheldConfig(NodeConfig):
    """A police handheld: reporting rates, fix quality limits, the SOS button."""

    report_standing_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    report_moving_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    report_sos_s: Annotated[float, Field(ge=0.2, le=60)] = 1.0
    moving_mps: Annotated[float, Field(gt=0, le=10)] = 1.0
    max_hdop: Annotated[float, Field(gt=0, le=50)] = 5.0
    stale_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_speed_mps: Annotated[float, Field(gt=0, le=200)] = 70.0
    sos_hold_s: Annotated[float, Field(ge=0.5, le=10)] = 2.0
    sos_cancel_s: Annotated[float, Field(ge=0, le=60)] = 5.0
    sos_retry_s: Annotated[float, Field(ge=0.5, le=120)] = 3.0


class CameraConfig(NodeConfig):
    """An ANPR camera: how fast it reads, when a vehicle has passed, its junction."""

    fps: Annotated[float, Field(gt=0, le=30)] = 5.0
    track_gap_s: Annotated[float, Field(gt=0, le=30)] = 1.5
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.2
    silent_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    scene_width: Annotated[int, Field(ge=160, le=4096)] = 960
    jpeg_quality: Annotated[int, Field(ge=30, le=95)] = 80
    # Red-light capture: the cabinet whose retained state gives the phase,
    # the signal group of this camera's lane, and the stop line's image row.
    junction: str = Field(default="", max_length=64)
    signal_group: str = Field(default="", max_length=64)
    stop_line_y: Annotated[float, Field(ge=0)] | None = None


class SignalConfig(NodeConfig):
    """A signal cabinet: the hours it must not be updated in (local time)."""

    peak_windows: list[
        Annotated[
            str,
            Field(
                pattern=r"^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$", max_length=11
            ),
        ]
    ] = Field(default_factory=lambda: ["07:00-09:00", "17:00-19:00"], max_length=24)


KIND_CONFIG: dict[str, type[NodeConfig]] = {
    "kiosk": NodeConfig,
    "camera": CameraConfig,
    "loop_detector": NodeConfig,
    "signal_controller": SignalConfig,
    "handheld": HandheldConfig,
    "sim": SimConfig,
}


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
