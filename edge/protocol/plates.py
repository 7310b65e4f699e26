"""Number plates on the wire: the plate grammar and the camera's events.

The grammar (province, issuing-office letter, serial; 8 characters on green
new-energy plates; special suffixes) is shared by the camera's decoder and
central's suspect list, so both agree on what a plate is. Events:
``plate`` (one vehicle's voted read with its evidence package) and
``violation`` (a red-light crossing with the frames before and at the stop
line and the phase in force). Network I/O is not handled here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.protocol.errors import PayloadError

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # serial letters: no I or O
OFFICES = LETTERS + "O"  # the issuing office; 粤O and the like are police
DIGITS = "0123456789"
SUFFIXES = "学警挂港澳"
SERIAL = LETTERS + DIGITS
Colour = Literal["blue", "yellow", "green", "white", "black"]


def positions(length: int) -> list[str]:
    """The characters allowed at each position of a plate of ``length``.

    Raises:
        ValueError: not a plate length (7, or 8 for new energy).
    """
    if length == 7:  # noqa: PLR2004
        return [PROVINCES, OFFICES, *[SERIAL] * 4, SERIAL + SUFFIXES]
    if length == 8:  # noqa: PLR2004
        return [PROVINCES, OFFICES, *[SERIAL] * 6]
    raise ValueError(f"expected a plate of 7 or 8 characters, got {length}")


def is_plate(text: str) -> bool:
    """Whether ``text`` follows the plate grammar."""
    try:
        allowed = positions(len(text))
    except ValueError:
        return False
    return all(c in a for c, a in zip(text, allowed, strict=True))


def check_plate(text: str) -> str:
    """``text`` upper-cased and stripped if it is a plate.

    Raises:
        PayloadError: (a ``ValueError``) naming the first character that does
            not fit, or the length.
    """
    clean = text.strip().upper().replace("·", "").replace(" ", "")
    got = repr(text)[:40]
    try:
        allowed = positions(len(clean))
    except ValueError as exc:
        raise PayloadError(
            f"{text!r}: {exc}", field="plate", got=got, reason="plate"
        ) from exc
    for i, (c, a) in enumerate(zip(clean, allowed, strict=True)):
        if c not in a:
            raise PayloadError(
                f"{text!r}: character {i + 1} {c!r} cannot be there",
                field="plate",
                got=got,
                reason="plate",
            )
    return clean


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Alternative(_Body):
    """Another likely reading and its confidence."""

    text: str = Field(max_length=16)
    confidence: Annotated[float, Field(ge=0, le=1)]


class PlateEventBody(_Body):
    """One vehicle's plate, voted over its frames, with signed evidence."""

    read_id: Annotated[str, Field(min_length=1, max_length=64)]
    text: str = Field(max_length=16)
    confidence: Annotated[float, Field(ge=0, le=1)]
    alternatives: list[Alternative] = Field(default_factory=list, max_length=5)
    colour: Colour
    seen_at: datetime
    frames: Annotated[int, Field(ge=1)] = 1
    box: list[float] = Field(default_factory=list, max_length=4)
    evidence: dict[str, Any] = Field(max_length=16)

    @field_validator("text")
    @classmethod
    def _plate(cls, value: str) -> str:
        return check_plate(value)


class ViolationBody(_Body):
    """A red-light crossing: the vehicle, the signal in force, the frames."""

    violation_id: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Literal["red_light"] = "red_light"
    text: str = Field(max_length=16)
    confidence: Annotated[float, Field(ge=0, le=1)]
    junction: str = Field(max_length=64)
    signal_group: str = Field(max_length=64)
    red_since: datetime
    crossed_at: datetime
    evidence: dict[str, Any] = Field(max_length=16)
