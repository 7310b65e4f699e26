"""The cabinet ↔ signal controller protocol, after GB/T 20999-2017.

Pure: bytes in, frames out, and back. GB/T 20999-2017 (交通信号控制机与
上位机间的数据通信协议, Appendix A 通信帧结构) frames a message as

    0x7E | length | version | centre id | controller id | junction id |
    sequence | frame type | value count | values | CRC-16 | 0x7D

What we take from the standard, byte for byte:

* start byte ``0x7E``, end byte ``0x7D``, escape byte ``0x5C``; inside a
  frame each ``0x7E``, ``0x7D`` and ``0x5C`` is sent with ``0x5C`` in front
  of it (协议约定 b); the escape bytes are not part of the CRC (c);
* multi-byte fields big-endian, high byte first (d);
* the CRC-16 with generator polynomial x¹⁶+x¹²+x²+1 (0x1005), initial value
  0, most significant bit first, no final XOR, over every byte between the
  start and end bytes except the CRC itself, before escaping;
* the frame types: query 0x10, query reply 0x20, query error reply 0x21,
  set 0x30, set reply 0x40, set error reply 0x41, broadcast 0x50, trap
  (unsolicited report) 0x60, heartbeat query 0x70, heartbeat reply 0x80;
* data values addressed as data class – object – attribute – element, at
  most 255 values a frame.

Where we deviate, and why (docs/field-buses.md keeps the same list):

* header: a 1-byte version ``0x10`` (the standard: 2 bytes, 0x0101/0x0102),
  4-byte sender and receiver ids (the standard: a 1-byte centre id, a
  4-byte controller id and a 1-byte junction id) and a 2-byte sequence
  number (the standard: 1 byte). The cabinet matches a plan's set reply to
  its set by a sequence number that must not wrap within a minute of
  1-second polls;
* length: 2 bytes counting version … values (the standard's text says only
  "without start and end bytes"; implementations differ on what it counts);
* each value is ``class, object, attribute, element`` and a **2-byte**
  length before its data (the standard: a 1-byte value index and a 1-byte
  length of class … data), because stage and schedule tables travel as
  JSON text longer than 251 bytes;
* the data classes and their layouts (:class:`Obj`, plan durations in
  tenths of a second, group states as ASCII letters) are ours, not the
  standard's Appendix B/C object tables.

:class:`FrameReader` takes a byte stream in any chunking, returns complete
frames and skips garbage and damaged frames (counting them by reason), so
a noisy serial line never stops the cabinet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from signal_controller.errors import SignalError

START, END, ESC = 0x7E, 0x7D, 0x5C
VERSION = 0x10
MAX_FRAME = 4096
HEADER = struct.Struct(">BIIHBB")  # version, sender, receiver, seq, type, count


class FrameType(IntEnum):
    """What a frame is for (GB/T 20999-2017 frame types)."""

    QUERY = 0x10
    QUERY_REPLY = 0x20
    QUERY_ERROR = 0x21
    SET = 0x30
    SET_REPLY = 0x40
    ERROR = 0x41  # the standard's set error reply: the controller refused a set
    BROADCAST = 0x50
    REPORT = 0x60  # the standard's trap: an unsolicited report
    HEARTBEAT = 0x70
    HEARTBEAT_REPLY = 0x80


class Obj(IntEnum):
    """Data classes (object groups) of the controller's model."""

    DEVICE = 0x01  # attribute 1: controller id/version text
    GROUPS = 0x02  # attribute 1: group states, one ASCII letter per group
    STAGES = 0x03  # attribute 1: stage table (JSON text)
    PLAN = 0x04  # attribute 1: the plan's durations (see encode_plan)
    SCHEDULE = 0x05  # attribute 1: time-of-day table (JSON text)
    RUNNING = 0x06  # attribute 1: mode, stage, seconds into stage, plan id
    FAULTS = 0x07  # attribute 1: fault codes (ASCII, comma separated)
    MODE = 0x08  # attribute 1: requested mode (see Mode)


class Mode(IntEnum):
    """Controller modes."""

    PLAN = 1
    FLASH = 2  # flashing yellow
    ALL_RED = 3
    HOLD = 4  # hold the current stage


class FrameError(SignalError, ValueError):
    """A frame that cannot be decoded; ``reason`` is short and countable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Value:
    """One class–object–attribute value."""

    cls: int
    obj: int = 1
    attr: int = 1
    index: int = 0
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Frame:
    """One protocol frame."""

    type: FrameType
    sender: int
    receiver: int
    seq: int
    values: tuple[Value, ...] = ()


def crc16(data: bytes) -> int:
    """The GB/T 20999-2017 CRC-16: polynomial 0x1005, initial 0, MSB first."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1005) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _stuff(data: bytes) -> bytes:
    """Put the escape byte in front of every start, end and escape byte."""
    out = bytearray()
    for b in data:
        if b in (START, END, ESC):
            out.append(ESC)
        out.append(b)
    return bytes(out)


def _unstuff(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == ESC:
            nxt = next(it, None)
            if nxt is None:
                raise FrameError("escape", "escape at the end of the frame")
            if nxt not in (START, END, ESC):
                raise FrameError(
                    "escape", f"expected 7e, 7d or 5c after 5c, got {nxt:02x}"
                )
            out.append(nxt)
        elif b in (START, END):
            raise FrameError("escape", f"unescaped {b:02x} inside the frame")
        else:
            out.append(b)
    return bytes(out)


def encode(frame: Frame) -> bytes:
    """The bytes of a frame on the wire.

    Raises:
        ValueError: more than 255 values, or a value over 65,535 bytes.
    """
    if len(frame.values) > 255:  # noqa: PLR2004
        raise ValueError(f"expected at most 255 values, got {len(frame.values)}")
    body = HEADER.pack(
        VERSION,
        frame.sender,
        frame.receiver,
        frame.seq & 0xFFFF,
        int(frame.type),
        len(frame.values),
    )
    for v in frame.values:
        body += struct.pack(">BBBBH", v.cls, v.obj, v.attr, v.index, len(v.data))
        body += v.data
    head = struct.pack(">H", len(body))
    crc = struct.pack(">H", crc16(head + body))
    return bytes((START,)) + _stuff(head + body + crc) + bytes((END,))


def decode(raw: bytes) -> Frame:
    """One frame from its bytes, markers included.

    Raises:
        FrameError: markers, escape, length, CRC, version, type or value
            layout wrong (the reason names which).
    """
    if len(raw) < 2 or raw[0] != START or raw[-1] != END:  # noqa: PLR2004
        raise FrameError("markers", f"expected 7e … 7d, got {raw[:1].hex()}…")
    data = _unstuff(raw[1:-1])
    if len(data) < 2 + HEADER.size + 2:  # length, header, CRC
        raise FrameError("short", f"{len(data)} bytes")
    (length,) = struct.unpack(">H", data[:2])
    if length != len(data) - 4:
        raise FrameError("length", f"says {length}, has {len(data) - 4}")
    (crc,) = struct.unpack(">H", data[-2:])
    if crc != crc16(data[:-2]):
        raise FrameError("crc", f"got {crc:04x}, computed {crc16(data[:-2]):04x}")
    version, sender, receiver, seq, ftype, count = HEADER.unpack_from(data, 2)
    if version != VERSION:
        raise FrameError("version", f"{version:#x}")
    try:
        kind = FrameType(ftype)
    except ValueError as exc:
        raise FrameError("type", f"{ftype:#x}") from exc
    return Frame(kind, sender, receiver, seq, _values(data, count))


def _values(data: bytes, count: int) -> tuple[Value, ...]:
    values, pos, end = [], 2 + HEADER.size, len(data) - 2
    for _ in range(count):
        if pos + 6 > end:
            raise FrameError("value", "value header past the end")
        cls, obj, attr, index, size = struct.unpack(">BBBBH", data[pos : pos + 6])
        pos += 6
        if pos + size > end:
            raise FrameError("value", "value data past the end")
        values.append(Value(cls, obj, attr, index, data[pos : pos + size]))
        pos += size
    if pos != end:
        raise FrameError("value", f"{end - pos} bytes after the last value")
    return tuple(values)


@dataclass
class FrameReader:
    """Frames out of a byte stream in any chunking; garbage is skipped."""

    buffer: bytearray = field(default_factory=bytearray)
    errors: dict[str, int] = field(default_factory=dict)

    def feed(self, chunk: bytes) -> list[Frame]:
        """Take bytes; return the frames they complete."""
        self.buffer += chunk
        frames: list[Frame] = []
        while True:
            start = self.buffer.find(START)
            if start < 0:
                if self.buffer:
                    self._count("garbage")
                self.buffer.clear()
                return frames
            if start:
                self._count("garbage")
                del self.buffer[:start]
            at = _marker(self.buffer)
            if at < 0:
                if len(self.buffer) > MAX_FRAME:
                    self._count("oversize")
                    self.buffer.clear()
                return frames
            if self.buffer[at] == START:
                self._count("truncated")  # a new frame began: drop the broken one
                del self.buffer[:at]
                continue
            raw = bytes(self.buffer[: at + 1])
            del self.buffer[: at + 1]
            try:
                frames.append(decode(raw))
            except FrameError as exc:
                self._count(exc.reason)

    def _count(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1


def _marker(buffer: bytearray) -> int:
    """Index of the first unescaped start or end byte after the first, or -1."""
    i, n = 1, len(buffer)
    while i < n:
        b = buffer[i]
        if b == ESC:
            i += 2
        elif b in (START, END):
            return i
        else:
            i += 1
    return -1


# -- value layouts -----------------------------------------------------------------
def encode_plan(
    greens: tuple[float, ...],
    cycle: float,
    offset: float,
    yellow: float,
    all_red: float,
) -> bytes:
    """A plan's durations in tenths of a second."""
    tenths = [round(x * 10) for x in (cycle, offset)]
    return struct.pack(
        f">HHBBB{len(greens)}H",
        *tenths,
        round(yellow * 10),
        round(all_red * 10),
        len(greens),
        *(round(g * 10) for g in greens),
    )


def decode_plan(data: bytes) -> tuple[tuple[float, ...], float, float, float, float]:
    """(greens, cycle, offset, yellow, all_red) from :func:`encode_plan`.

    Raises:
        FrameError: the value is not a plan.
    """
    try:
        cycle, offset, yellow, all_red, n = struct.unpack(">HHBBB", data[:7])
        greens = struct.unpack(f">{n}H", data[7:])
    except struct.error as exc:
        raise FrameError("plan", str(exc)) from exc
    return (
        tuple(g / 10 for g in greens),
        cycle / 10,
        offset / 10,
        yellow / 10,
        all_red / 10,
    )


def encode_running(mode: Mode, stage: int, into_s: float, plan: str) -> bytes:
    """The controller's running state."""
    name = plan.encode()[:64]
    return struct.pack(">BBH", int(mode), stage, round(into_s * 10)) + name


def decode_running(data: bytes) -> tuple[Mode, int, float, str]:
    """(mode, stage, seconds into it, plan version).

    Raises:
        FrameError: not a running-state value.
    """
    try:
        mode, stage, tenths = struct.unpack(">BBH", data[:4])
        return Mode(mode), stage, tenths / 10, data[4:].decode()
    except (struct.error, ValueError) as exc:
        raise FrameError("running", str(exc)) from exc
