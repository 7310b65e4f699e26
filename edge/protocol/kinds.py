"""The device kinds, declared once: code, Chinese label, config schema, code.

Every other list of kinds is read from :data:`REGISTRY`: the node command
line (which agent runs a kind), the OTA release builder (which package a
kind's release carries), central's policy and permissions (which configs
and resources exist) and, through ``GET /api/v1/kinds``, the console. The
config schemas are the models central validates policy against and a node
validates its desired configuration against. Pure data: nothing here
imports a node package (``agent`` and ``package`` are names, resolved by
whoever runs the node) and nothing does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal[
    "kiosk", "camera", "loop_detector", "signal_controller", "handheld", "sim"
]


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
    junction: str = Field(
        default="", max_length=64, pattern=r"^([a-z0-9][a-z0-9_-]{0,63})?$"
    )
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


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One device kind.

    Attributes:
        code: the kind's code on the wire, in settings and in the API.
        label: what a person sees (Chinese).
        package: the top-level package a release of the kind carries
            (besides ``edge`` and ``baling``).
        agent: the node's agent class, ``"module:Class"``.
        config: the configuration schema central writes and the node accepts.
    """

    code: Kind
    label: str
    package: str
    agent: str
    config: type[NodeConfig]

    def __post_init__(self) -> None:
        """Check the agent names a class inside the kind's package."""
        module, _, name = self.agent.partition(":")
        if not name or module.split(".")[0] != self.package:
            msg = (
                f"expected agent '{self.package}.<module>:<Class>', got {self.agent!r}"
            )
            raise ValueError(msg)


_SPECS = (
    KindSpec(
        code="kiosk",
        label="便民信息亭",
        package="kiosk",
        agent="kiosk.agent:KioskAgent",
        config=NodeConfig,
    ),
    KindSpec(
        code="camera",
        label="车牌识别摄像机",
        package="camera_node",
        agent="camera_node.agent:CameraAgent",
        config=CameraConfig,
    ),
    KindSpec(
        code="loop_detector",
        label="车辆检测器",
        package="loop_detector",
        agent="loop_detector.agent:DetectorAgent",
        config=NodeConfig,
    ),
    KindSpec(
        code="signal_controller",
        label="信号机柜",
        package="signal_controller",
        agent="signal_controller.agent:SignalAgent",
        config=SignalConfig,
    ),
    KindSpec(
        code="handheld",
        label="警务手持终端",
        package="handheld",
        agent="handheld.agent:HandheldAgent",
        config=HandheldConfig,
    ),
    KindSpec(
        code="sim",
        label="模拟节点",
        package="firmware_sim",
        agent="firmware_sim.eventnode:SimAgent",
        config=SimConfig,
    ),
)
REGISTRY: dict[str, KindSpec] = {spec.code: spec for spec in _SPECS}
if tuple(REGISTRY) != get_args(Kind):  # a kind added to one and not the other
    _msg = f"expected the registry to list {get_args(Kind)}, got {tuple(REGISTRY)}"
    raise RuntimeError(_msg)
KINDS: tuple[Kind, ...] = tuple(spec.code for spec in _SPECS)
KIND_CONFIG: dict[str, type[NodeConfig]] = {s.code: s.config for s in _SPECS}

__all__ = [
    "KINDS",
    "KIND_CONFIG",
    "REGISTRY",
    "CameraConfig",
    "HandheldConfig",
    "Kind",
    "KindSpec",
    "NodeConfig",
    "SignalConfig",
    "SimConfig",
]
