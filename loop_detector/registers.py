"""The detector card's Modbus register map, and reading it (pure).

Detector cards (inductive-loop amplifiers, microwave radars) answer Modbus
RTU as device 1 with **input registers** (function 0x04); 16-bit words,
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
