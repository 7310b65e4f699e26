"""The detector card's Modbus register map and framing, and reading it (pure).

Serial framing. The card leaves the factory at the default framing of the
MODBUS over Serial Line Specification and Implementation Guide V1.02
(§2.5.1, RTU character format: 8 data bits, even parity required by
default, 1 stop bit; the implementation classes name 19,200 baud default):
**19200 baud, 8E1, unit id 1** (:data:`DEFAULT_FRAMING`). The spec allows
no parity only with **2 stop bits** (8N2); cards set to 8N1 exist and are
read as well, because the node takes every field from its settings. Baud
rate, parity and stop bits are set on the card's DIP switches (read-only
holding registers 1–3 report them); the unit id is kept in the card's
EEPROM and written over the bus (holding register 0).

The card answers only its own unit id and is silent to every other one
(several cards share one RS-485 line), silent to broadcasts (unit 0) except
that it performs writes, silent to frames with a bad CRC, and silent when
it is dead. Functions: 0x03 read holding registers, 0x04 read input
registers, 0x06 write single register, 0x10 write multiple registers; any
other function answers exception 01 (illegal function), an address outside
a table or a write to a read-only register exception 02 (illegal data
address), a bad quantity, length or value exception 03 (illegal data
value); a refused request changes nothing.

**Holding registers** (function 0x03 read, 0x06/0x10 write), configuration:

======  =====  ============================================================
 0      RW     Modbus unit id, 1-247 (takes effect after the reply)
 1      RO     baud rate / 100 (192 = 19,200)
 2      RO     parity: 0 none, 1 odd, 2 even
 3      RO     stop bits: 1 or 2
 4      RW     loop sensitivity, 1 (least) - 9 (most); factory 5
======  =====  ============================================================

**Input registers** (function 0x04), read-only measurements; 16-bit words,
32-bit counters as two words, high word first:

======  ==================================================================
 0      status bits: 0x0001 card fault, 0x0002 power low
 1      number of lanes (1-8)
 2      firmware version (major × 256 + minor)
 8·n    lane n (n = 1…8), a block of 8 words:
 +0,+1  vehicle count since power-on (u32, wraps)
 +2,+3  occupied time since power-on, ms (u32, wraps)
 +4     presence now (0/1)
 +5     speed of the last vehicle, 0.1 km/h (0: the sensor gives none)
 +6     sensor type (1 inductive loop, 2 microwave radar)
 +7     lane fault bits (0x0001 loop open, 0x0002 loop shorted)
======  ==================================================================

Counters are cumulative so that a missed poll loses nothing: the node
takes differences, modulo 2³². One read of 72 registers (Modbus allows
125) takes the whole card.
"""

from __future__ import annotations

from dataclasses import dataclass

LANE_BASE = 8
LANE_WORDS = 8
MAX_LANES = 8
READ_COUNT = LANE_BASE * (MAX_LANES + 1)  # 72: one read (≤ 125) covers every lane
SENSORS = {1: "loop", 2: "microwave"}

# holding registers (configuration); see the table above
H_UNIT, H_BAUD, H_PARITY, H_STOPBITS, H_SENSITIVITY = range(5)
HOLDING_COUNT = 5
PARITY_CODES = {"N": 0, "O": 1, "E": 2}
# the holding registers a master may write, and the values each takes
WRITABLE = {H_UNIT: range(1, 248), H_SENSITIVITY: range(1, 10)}


@dataclass(frozen=True, slots=True)
class Framing:
    """How bytes travel on the card's serial line (one setting for the line)."""

    baudrate: int = 19_200
    parity: str = "E"
    stopbits: int = 1
    bytesize: int = 8

    def __post_init__(self) -> None:
        if self.parity not in PARITY_CODES:
            raise ValueError(f"expected parity N, E or O, got {self.parity!r}")
        if self.stopbits not in {1, 2}:
            raise ValueError(f"expected 1 or 2 stop bits, got {self.stopbits}")
        if self.bytesize != 8:  # noqa: PLR2004 - RTU carries whole bytes
            raise ValueError(f"expected 8 data bits (Modbus RTU), got {self.bytesize}")
        if self.baudrate <= 0:
            raise ValueError(f"expected a positive baud rate, got {self.baudrate}")

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


DEFAULT_FRAMING = Framing()  # 19200 8E1, the Modbus serial-line default
DEFAULT_UNIT = 1


@dataclass(frozen=True, slots=True)
class LaneReading:
    """One lane's registers at one poll."""

    count: int
    occupied_ms: int
    presence: bool
    speed_kmh: float | None
    sensor: str
    fault_bits: int


@dataclass(frozen=True, slots=True)
class CardReading:
    """The whole card at one poll."""

    status: int
    lanes: tuple[LaneReading, ...]


def u32(hi: int, lo: int) -> int:
    """A 32-bit counter from two words."""
    return (hi << 16) | lo


def parse(words: list[int]) -> CardReading:
    """A card reading from ``READ_COUNT`` input registers.

    Raises:
        ValueError: too few registers, or an impossible lane count.
    """
    if len(words) < LANE_BASE * 2:
        raise ValueError(f"expected {READ_COUNT} registers, got {len(words)}")
    n = words[1]
    if not 1 <= n <= MAX_LANES or len(words) < LANE_BASE * (n + 1):
        raise ValueError(f"card reports {n} lanes in {len(words)} registers")
    lanes = []
    for lane in range(1, n + 1):
        w = words[LANE_BASE * lane : LANE_BASE * lane + LANE_WORDS]
        lanes.append(
            LaneReading(
                count=u32(w[0], w[1]),
                occupied_ms=u32(w[2], w[3]),
                presence=bool(w[4]),
                speed_kmh=w[5] / 10 if w[5] else None,
                sensor=SENSORS.get(w[6], "unknown"),
                fault_bits=w[7],
            )
        )
    return CardReading(status=words[0], lanes=tuple(lanes))


def diff32(new: int, old: int) -> int:
    """The increase of a wrapping 32-bit counter."""
    return (new - old) % (1 << 32)
