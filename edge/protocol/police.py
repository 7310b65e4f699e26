"""Bodies of the police handheld's events and of central's commands to it.

Handheld → central (events, through the outbox): ``position``, ``sos``,
``dispatch_ack``, ``lookup``. Central → handheld (signed commands): ``alert``,
``sos_ack``, ``dispatch``, ``lookup_result``. Both ends validate against the
same models. Network I/O is not handled here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Id = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=500)]

SosPhase = Literal[
    "raised", "acknowledged", "assigned", "resolved", "false_alarm", "cancelled"
]
AlarmKind = Literal["sos", "beat_exit", "beat_leader", "stationary", "plate", "message"]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PositionBody(_Body):
    """One accepted fix; ``fix_ts`` is the receiver's time, not the send time."""

    lat: Lat
    lon: Lon
    fix_ts: datetime
    speed_mps: Annotated[float, Field(ge=0, le=200)] = 0.0
    course: Annotated[float, Field(ge=0, lt=360)] | None = None
    hdop: Annotated[float, Field(ge=0, le=99.99)] | None = None
    accuracy_m: Annotated[float, Field(ge=0, le=100_000)] | None = None
    sats: Annotated[int, Field(ge=0, le=99)] | None = None
    altitude_m: Annotated[float, Field(ge=-1000, le=20_000)] | None = None
    battery: Annotated[float, Field(ge=0, le=100)] | None = None
    charging: bool | None = None
    source: Literal["gnss", "osmand"] = "gnss"
    sos: bool = False


class SosBody(_Body):
    """SOS raised (or cancelled by the officer); repeated until central answers."""

    sos_id: Id
    phase: Literal["raised", "cancelled"]
    pressed_at: AwareDatetime  # central subtracts it from its aware clock
    lat: Lat | None = None
    lon: Lon | None = None
    attempt: Annotated[int, Field(ge=1)] = 1


class DispatchAckBody(_Body):
    """The officer's receipt or acknowledgement of a message or an alert."""

    message_id: Id
    action: Literal["received", "acknowledged"]
    at: datetime


class LookupBody(_Body):
    """A person or vehicle look-up asked from the handheld, with its reason."""

    query_id: Id
    what: Literal["person", "vehicle"]
    query: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Text


class AlertArgs(_Body):
    """An alarm pushed to an officer (an SOS nearby, a beat alarm, a plate hit)."""

    alert_id: Id
    kind: AlarmKind
    text: Text
    lat: Lat | None = None
    lon: Lon | None = None
    distance_m: Annotated[float, Field(ge=0)] | None = None
    # the device the alarm is about (the officer in danger)
    about: str = Field(default="", max_length=64)
    raised_at: datetime
    repeat: Annotated[int, Field(ge=0)] = 0


class SosAckArgs(_Body):
    """Central's answer to an SOS: where it stands and who is coming."""

    sos_id: Id
    phase: SosPhase
    responders: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=200
    )
    text: Text = ""


class DispatchArgs(_Body):
    """A message from command to one officer, a group or all."""

    message_id: Id
    text: Annotated[str, Field(min_length=1, max_length=500)]
    sender: str = Field(default="", max_length=64)
    priority: Literal["normal", "urgent"] = "normal"
    sent_at: datetime


class LookupResultArgs(_Body):
    """The answer to a look-up, or the reason it was refused."""

    query_id: Id
    ok: bool
    result: dict[str, Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict, max_length=64
    )
    error: str = Field(default="", max_length=500)


__all__ = [
    "AlarmKind",
    "AlertArgs",
    "DispatchAckBody",
    "DispatchArgs",
    "LookupBody",
    "LookupResultArgs",
    "PositionBody",
    "SosAckArgs",
    "SosBody",
    "SosPhase",
]
