"""What a guidance sign (诱导屏) is asked to show: templates, priorities, checks (pure).

Central composes a sign's message from templates — travel time to a
destination, congestion bars, an incident warning, a diversion, a slogan —
and checks it against the sign before anything is sent: every character
must be in the sign's character set (GB 2312 for the common 16×16
dot-matrix fonts of LED signs; see GA/T 484-2010 for the signs and GA/T
1055-2013 for their communication protocol), every line must fit the
sign's width in full-width (16 px) and half-width (8 px) cells, the lines
its height, the colours its LEDs. When several messages want one sign, the
highest priority wins (incident above travel time above slogans), the
newest among equals.

Left to others: which sign shows what (rules and operator approval), the
sign's protocol and the record of what it showed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from central.errors import InvalidError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

PRIORITY = {
    "incident": 3,
    "diversion": 3,
    "travel_time": 2,
    "congestion": 2,
    "slogan": 1,
}
COLOURS = ("red", "green", "yellow")
MIN_FONT_PX = 8


class SignError(InvalidError):
    """A message the sign cannot show, naming what does not fit (a ValueError)."""


@dataclass(frozen=True, slots=True)
class SignSpec:
    """A sign's geometry, font, colours and character set."""

    width_px: int
    height_px: int
    font_px: int = 16
    colours: tuple[str, ...] = COLOURS
    charset: str = "gb2312"

    def __post_init__(self) -> None:
        if (
            self.font_px < MIN_FONT_PX
            or self.width_px < self.font_px
            or self.height_px < self.font_px
        ):
            raise ValueError(
                f"expected a sign of at least one {self.font_px}px character "
                f"(font >= {MIN_FONT_PX} px), got {self.width_px}x{self.height_px}"
            )

    @property
    def columns(self) -> int:
        """Full-width characters per line."""
        return self.width_px // self.font_px

    @property
    def rows(self) -> int:
        """Lines the sign shows at once."""
        return self.height_px // self.font_px


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a message, in one colour."""

    text: str
    colour: str = "green"


@dataclass(frozen=True, slots=True)
class Message:
    """A message for a sign: what kind (its priority), its lines, when made."""

    kind: str
    lines: tuple[Line, ...]
    made_at: datetime
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in PRIORITY:
            raise ValueError(
                f"expected a kind of {sorted(PRIORITY)}, got {self.kind!r}"
            )
        if not self.lines:
            raise ValueError("expected at least one line, got none")

    @property
    def priority(self) -> int:
        """Incident and diversion 3, travel time and congestion 2, slogan 1."""
        return PRIORITY[self.kind]


def cells(text: str) -> float:
    """The width of ``text`` in full-width cells (half-width characters count ½)."""
    return sum(
        1.0 if unicodedata.east_asian_width(c) in ("W", "F") else 0.5 for c in text
    )


def check(message: Message, sign: SignSpec) -> Message:
    """Return ``message`` if ``sign`` can show it.

    Raises:
        SignError: naming the first line, character or colour that does not
            fit, with what the sign allows.
    """
    if len(message.lines) > sign.rows:
        raise SignError(
            f"expected at most {sign.rows} lines on a {sign.width_px}x"
            f"{sign.height_px} sign, got {len(message.lines)}"
        )
    for n, line in enumerate(message.lines, start=1):
        for c in line.text:
            try:
                c.encode(sign.charset)
            except UnicodeEncodeError as exc:
                raise SignError(
                    f"line {n}: character {c!r} is not in the sign's "
                    f"{sign.charset.upper()} font"
                ) from exc
        width = cells(line.text)
        if width > sign.columns:
            raise SignError(
                f"line {n}: expected at most {sign.columns} characters, got "
                f"{width:g} ({line.text!r})"
            )
        if line.colour not in sign.colours:
            raise SignError(
                f"line {n}: expected a colour of {list(sign.colours)}, got "
                f"{line.colour!r}"
            )
    return message


def choose(messages: Sequence[Message]) -> Message | None:
    """The message a sign shows: highest priority, then the newest."""
    if not messages:
        return None
    return max(messages, key=lambda m: (m.priority, m.made_at))


def congestion_colour(seconds: float, free_flow_s: float) -> str:
    """A link's colour bar: green, yellow (1.5× free flow), red (2.5×)."""
    ratio = seconds / free_flow_s if free_flow_s > 0 else 1.0
    if ratio >= 2.5:  # noqa: PLR2004
        return "red"
    return "yellow" if ratio >= 1.5 else "green"  # noqa: PLR2004


def travel_time(
    destination: str, seconds: float, *, free_flow_s: float, at: datetime
) -> Message:
    """至<destination> <n>分钟, coloured by how congested the way is."""
    minutes = max(1, round(seconds / 60))
    colour = congestion_colour(seconds, free_flow_s)
    return Message(
        kind="travel_time",
        lines=(Line(f"至{destination}", "green"), Line(f"约{minutes}分钟", colour)),
        made_at=at,
    )


def incident_warning(place: str, lane: int | None, *, at: datetime) -> Message:
    """前方<place> / 第<n>车道受阻 / 减速慢行."""
    what = f"第{lane}车道受阻" if lane is not None else "发生交通事件"
    return Message(
        kind="incident",
        lines=(
            Line(f"前方{place}", "yellow"),
            Line(what, "red"),
            Line("减速慢行", "yellow"),
        ),
        made_at=at,
    )


def diversion(place: str, via: str, *, at: datetime) -> Message:
    """<place>拥堵 / 请绕行<via>."""
    return Message(
        kind="diversion",
        lines=(Line(f"{place}拥堵", "red"), Line(f"请绕行{via}", "yellow")),
        made_at=at,
    )


def slogan(text: str, *, at: datetime) -> Message:
    """A standing message (安全行车 …), one line per ``/``."""
    return Message(
        kind="slogan",
        lines=tuple(Line(part, "green") for part in text.split("/")),
        made_at=at,
    )
