"""Detector cards on an RS-485 line: Modbus RTU slaves on a pty, byte for byte.

A :class:`DetectorCard` keeps the registers of the card's documented map
(:mod:`loop_detector.registers`: input registers with counts, occupied time,
presence, speed per lane; holding registers with its configuration) and
answers Modbus RTU requests as the card's firmware does: only to its own
unit id, never when dead or to a frame with a bad CRC, with the Modbus
exception codes (01 illegal function, 02 illegal data address, 03 illegal
data value) for what it does not support, changing nothing then. Writes to
its writable holding registers take effect (a new unit id from the next
request on). A traffic source moves the counters: :meth:`DetectorCard.vehicle`
for one vehicle (a test, or SUMO's induction loops in the closed loop),
:meth:`DetectorCard.poisson` for steady traffic, and faults on demand (a
lane stuck on, a dead card).

An :class:`RtuLine` is the RS-485 line the node opens by URL (a pty, or
a TCP socket as a serial device server gives), with any number of cards
attached, each hearing every request and answering only its own (several
cards on one line, as in a cabinet). Frames are delimited by silence on
the line (the spec's t3.5). A card made with a ``framing`` stays silent
when a pty line is opened at another baud rate or stop-bit count, as a
real card hears only garbage then; a pty carries those two, not parity
(Linux refuses PARENB on a pty: nodes open a pty line with parity N, and
the socket line takes even parity).

The RTU framing and CRC here are written from the MODBUS specifications,
apart from pymodbus (which the node uses), so that the two ends do not share
a mistake; tests hold both to the specifications' worked examples.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import socket
import struct
import termios
import threading
import time
from collections import deque
from dataclasses import dataclass

from firmware_sim.errors import SimulatorError
from firmware_sim.gnss import Pty, open_pty
from loop_detector.registers import (
    DEFAULT_FRAMING,
    DEFAULT_UNIT,
    H_BAUD,
    H_PARITY,
    H_SENSITIVITY,
    H_STOPBITS,
    H_UNIT,
    HOLDING_COUNT,
    LANE_BASE,
    PARITY_CODES,
    READ_COUNT,
    WRITABLE,
    Framing,
)

logger = logging.getLogger(__name__)

# MODBUS Application Protocol V1.1b3 §6.3/§6.4 (1-125 registers per read),
# §6.12 (1-123 per write), §7 (exception codes); RTU ADU at most 256 bytes.
MAX_READ, MAX_WRITE, MAX_ADU = 125, 123, 256
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 0x01, 0x02, 0x03
READ_HOLDING, READ_INPUT, WRITE_SINGLE, WRITE_MULTIPLE = 0x03, 0x04, 0x06, 0x10
BROADCAST = 0
_BAUDS = {
    getattr(termios, name): int(name[1:])
    for name in dir(termios)
    if name.startswith("B") and name[1:].isdigit()
}


def crc16(data: bytes) -> bytes:
    """The RTU CRC of ``data``, low byte first (Modbus serial line, §6.2.2).

    Polynomial 0xA001 (reflected 0x8005), initial value 0xFFFF.
    """
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


class RefusedError(SimulatorError):
    """A request the card answers with a Modbus exception code."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"exception {code:02x}: {why}")
        self.code = code


@dataclass
class Lane:
    """One lane's counters."""

    count: int = 0
    occupied_ms: int = 0
    presence: bool = False
    speed_dkmh: int = 0
    sensor: int = 1
    fault_bits: int = 0


class DetectorCard:
    """One card's registers and firmware, answering on ``self.path``."""

    def __init__(
        self,
        lanes: int = 4,
        *,
        sensor: str = "loop",
        unit: int = DEFAULT_UNIT,
        framing: Framing | None = None,
        line: RtuLine | None = None,
    ) -> None:
        """A card with ``lanes`` lanes at ``unit``.

        Args:
            lanes: lanes the card reports (1-8).
            sensor: ``loop`` or ``microwave`` (radars measure speed).
            unit: its Modbus unit id (1-247).
            framing: the framing set on its DIP switches; None hears any
                baud rate (the registers then report the factory framing).
            line: the RS-485 line it hangs on; None gives it a line of its own.
        """
        self.lanes = [
            Lane(sensor=2 if sensor == "microwave" else 1) for _ in range(lanes)
        ]
        self.status = 0
        self.answering = True
        self.unit = unit
        self.sensitivity = 5
        self.framing = framing
        self._own_line = line is None
        self.line = RtuLine() if line is None else line
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The device path the node opens (the line's)."""
        return self.line.path

    # -- traffic ----------------------------------------------------------------------
    def vehicle(
        self, lane: int, *, speed_kmh: float = 40.0, over_s: float = 0.4
    ) -> None:
        """One vehicle over lane ``lane`` (from 1)."""
        with self._lock:
            ln = self.lanes[lane - 1]
            ln.count = (ln.count + 1) % (1 << 32)
            ln.occupied_ms = (ln.occupied_ms + round(over_s * 1000)) % (1 << 32)
            if ln.sensor == 2:  # noqa: PLR2004 - microwave radars measure speed
                ln.speed_dkmh = round(speed_kmh * 10)

    def set_presence(self, lane: int, *, present: bool) -> None:
        """A vehicle standing on the loop (or a loop stuck on)."""
        with self._lock:
            self.lanes[lane - 1].presence = present

    def poisson(
        self, flows_vph: list[float], stop: threading.Event, *, seed: int = 1
    ) -> None:
        """Steady random traffic at ``flows_vph`` per lane until ``stop``."""
        rng = random.Random(seed)  # noqa: S311 - simulation
        while not stop.wait(0.1):
            for lane, q in enumerate(flows_vph, start=1):
                if rng.random() < q / 3600 * 0.1:
                    self.vehicle(lane, speed_kmh=rng.uniform(25, 55))

    # -- registers -----------------------------------------------------------
    def registers(self) -> list[int]:
        """The input registers (see the map in loop_detector.registers)."""
        words = [0] * READ_COUNT
        words[0], words[1], words[2] = self.status, len(self.lanes), 0x0102
        for n, ln in enumerate(self.lanes, start=1):
            base = LANE_BASE * n
            words[base : base + 8] = [
                ln.count >> 16,
                ln.count & 0xFFFF,
                ln.occupied_ms >> 16,
                ln.occupied_ms & 0xFFFF,
                int(ln.presence),
                ln.speed_dkmh,
                ln.sensor,
                ln.fault_bits,
            ]
        return words

    def holding(self) -> list[int]:
        """The holding registers (configuration)."""
        framing = self.framing or DEFAULT_FRAMING
        words = [0] * HOLDING_COUNT
        words[H_UNIT] = self.unit
        words[H_BAUD] = framing.baudrate // 100
        words[H_PARITY] = PARITY_CODES[framing.parity]
        words[H_STOPBITS] = framing.stopbits
        words[H_SENSITIVITY] = self.sensitivity
        return words

    def hears(self, baudrate: int | None, stopbits: int) -> bool:
        """Whether bytes sent at this baud rate and stop bits reach the firmware."""
        if self.framing is None or baudrate is None:
            return True
        return (baudrate, stopbits) == (self.framing.baudrate, self.framing.stopbits)

    # -- the firmware ---------------------------------------------------------------
    def answer(self, frame: bytes) -> bytes | None:
        """The card's reply to one RTU frame heard on the line, or None (silent).

        Silent to other unit ids, to a frame with a bad CRC, to broadcasts
        (whose writes it performs) and when dead. Never raises.
        """
        if len(frame) < 4 or len(frame) > MAX_ADU:  # noqa: PLR2004 - unit, fc, CRC
            return None
        unit, pdu = frame[0], frame[1:-2]
        if crc16(frame[:-2]) != frame[-2:]:
            return None  # serial line §2.5.1.2: a frame with a bad CRC is dropped
        with self._lock:
            if not self.answering or unit not in {self.unit, BROADCAST}:
                return None
            try:
                reply = self._execute(pdu, broadcast=unit == BROADCAST)
            except RefusedError as exc:
                logger.debug("Card %s refused %s: %s", self.unit, pdu.hex(), exc)
                reply = bytes((pdu[0] | 0x80, exc.code))
        if unit == BROADCAST:
            return None  # application protocol §4.1: no reply to a broadcast
        return bytes((unit,)) + reply + crc16(bytes((unit,)) + reply)

    def _execute(self, pdu: bytes, *, broadcast: bool) -> bytes:
        fc = pdu[0]
        if fc in {READ_HOLDING, READ_INPUT} and not broadcast:
            table = self.holding() if fc == READ_HOLDING else self.registers()
            return bytes((fc,)) + _read(pdu, table)
        if fc == WRITE_SINGLE:
            if len(pdu) != 5:  # noqa: PLR2004
                raise RefusedError(ILLEGAL_VALUE, f"length {len(pdu)}")
            address, value = struct.unpack(">HH", pdu[1:])
            self._write(address, [value])
            return pdu  # the reply echoes the request (§6.6)
        if fc == WRITE_MULTIPLE:
            if len(pdu) < 6:  # noqa: PLR2004
                raise RefusedError(ILLEGAL_VALUE, f"length {len(pdu)}")
            address, quantity, size = struct.unpack(">HHB", pdu[1:6])
            if not 1 <= quantity <= MAX_WRITE or size != 2 * quantity:
                raise RefusedError(ILLEGAL_VALUE, f"{quantity} registers, {size} B")
            if len(pdu) != 6 + size:
                raise RefusedError(ILLEGAL_VALUE, f"length {len(pdu)}")
            self._write(address, list(struct.unpack(f">{quantity}H", pdu[6:])))
            return pdu[:5]
        raise RefusedError(ILLEGAL_FUNCTION, f"function {fc:#04x}")

    def _write(self, address: int, values: list[int]) -> None:
        """Write holding registers all or nothing."""
        if address + len(values) > HOLDING_COUNT:
            raise RefusedError(ILLEGAL_ADDRESS, f"{address}+{len(values)}")
        for at, value in enumerate(values, start=address):
            if at not in WRITABLE:
                raise RefusedError(ILLEGAL_ADDRESS, f"register {at} is read-only")
            if value not in WRITABLE[at]:
                raise RefusedError(ILLEGAL_VALUE, f"register {at} = {value}")
        for at, value in enumerate(values, start=address):
            if at == H_UNIT:
                self.unit = value  # the reply still goes out under the old id
            elif at == H_SENSITIVITY:
                self.sensitivity = value

    # -- the line ---------------------------------------------------------------------
    def start(self) -> None:
        """Hang the card on its line (and start the line if it is its own)."""
        self.line.attach(self)
        if self._own_line:
            self.line.start()

    def stop(self) -> None:
        """Take the card off the line (and close the line if it is its own)."""
        self.line.detach(self)
        if self._own_line:
            self.line.close()


def _read(pdu: bytes, table: list[int]) -> bytes:
    """Byte count and words of a read request (§6.3, §6.4), or a refusal."""
    if len(pdu) != 5:  # noqa: PLR2004
        raise RefusedError(ILLEGAL_VALUE, f"length {len(pdu)}")
    address, quantity = struct.unpack(">HH", pdu[1:])
    if not 1 <= quantity <= MAX_READ:
        raise RefusedError(ILLEGAL_VALUE, f"quantity {quantity}")
    if address + quantity > len(table):
        raise RefusedError(ILLEGAL_ADDRESS, f"{address}+{quantity}")
    words = table[address : address + quantity]
    return struct.pack(f">B{quantity}H", 2 * quantity, *words)


class _End:
    """One end the node talks through: the pty's master, or one TCP connection."""

    def __init__(self, fd: int, conn: socket.socket | None = None) -> None:
        self.fd, self.conn = fd, conn
        self.buffer = bytearray()
        self.last_rx = 0.0

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes:
        if self.conn is not None:
            return self.conn.recv(512)
        return os.read(self.fd, 512)

    def write(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.sendall(data)
        else:
            os.write(self.fd, data)


class RtuLine:
    """One RS-485 line; every attached card hears every frame.

    ``transport="pty"`` (the default) serves it on a pseudo-terminal, which
    carries the node's baud rate and stop bits to cards that check them, but
    no parity: Linux refuses PARENB on a pty, so a node opens a pty line
    with ``parity="N"``. ``transport="socket"`` serves the line on
    ``socket://127.0.0.1:PORT``, as a serial device server does: pyserial
    opens it with any framing (even parity included), and several nodes may
    connect, each getting the answers to its own requests; pymodbus reads a
    socket a byte at a time, so a 72-register poll takes about 0.35 s there.
    """

    def __init__(self, *, transport: str = "pty", gap_s: float = 0.01) -> None:
        """A line whose frames end after ``gap_s`` of silence.

        Raises:
            ValueError: ``transport`` is neither ``socket`` nor ``pty``.
        """
        if transport not in {"socket", "pty"}:
            raise ValueError(f"expected transport socket or pty, got {transport!r}")
        self.gap_s = gap_s
        self.cards: list[DetectorCard] = []
        self.heard: deque[bytes] = deque(maxlen=100)  # the last requests, for tests
        self.pty: Pty | None = None
        self.listener: socket.socket | None = None
        self._ends: list[_End] = []
        if transport == "pty":
            self.pty = open_pty()
            self._ends.append(_End(self.pty.master))
            self.path = self.pty.path
        else:
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.path = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, card: DetectorCard) -> None:
        """Hang a card on the line."""
        with self._lock:
            if card not in self.cards:
                self.cards.append(card)

    def detach(self, card: DetectorCard) -> None:
        """Take a card off the line."""
        with self._lock:
            if card in self.cards:
                self.cards.remove(card)

    def start(self) -> None:
        """Serve the line in a thread of its own (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, daemon=True, name="rs485-line"
            )
            self._thread.start()

    def close(self) -> None:
        """Stop serving and close the pty or the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.pty is not None:
            self.pty.close()
        for end in self._ends:
            if end.conn is not None:
                end.conn.close()
        if self.listener is not None:
            self.listener.close()

    def _framing(self) -> tuple[int | None, int]:
        """Baud rate and stop bits the node opened a pty line with (None: unknown)."""
        if self.pty is None:
            return None, 1
        try:
            attrs = termios.tcgetattr(self.pty.master)
        except termios.error:
            return None, 1
        return _BAUDS.get(attrs[4]), 2 if attrs[2] & termios.CSTOPB else 1

    def _run(self) -> None:
        while not self._stop.is_set():
            waiting: list[_End | socket.socket] = [*self._ends]
            if self.listener is not None:
                waiting.append(self.listener)
            ready, _, _ = select.select(waiting, [], [], self.gap_s)
            now = time.monotonic()
            for item in ready:
                if isinstance(item, socket.socket):
                    conn, _ = item.accept()
                    self._ends.append(_End(conn.fileno(), conn))
                else:
                    self._receive(item, now)
            for end in self._ends:
                if end.buffer and now - end.last_rx >= self.gap_s:
                    frame = bytes(end.buffer)  # t3.5 of silence: frame complete
                    end.buffer.clear()
                    self._dispatch(frame, end)

    def _receive(self, end: _End, now: float) -> None:
        try:
            data = end.read()
        except OSError:
            if end.conn is None:
                return  # the pty's slave end is closed: nobody on the line yet
            data = b""
        if not data and end.conn is not None:  # the node hung up
            end.conn.close()
            self._ends.remove(end)
            return
        end.buffer += data
        end.last_rx = now
        if len(end.buffer) > MAX_ADU:  # no RTU frame is longer: noise
            logger.debug("Dropping %d bytes of noise", len(end.buffer))
            end.buffer.clear()

    def _dispatch(self, frame: bytes, end: _End) -> None:
        self.heard.append(frame)
        baudrate, stopbits = self._framing()
        with self._lock:
            cards = list(self.cards)
        for card in cards:
            if not card.hears(baudrate, stopbits):
                continue
            try:
                reply = card.answer(frame)
            except Exception:  # a simulator bug must not stop the line
                logger.exception("Card %s failed on %s", card.unit, frame.hex())
                continue
            if reply is not None:
                with contextlib.suppress(OSError):
                    end.write(reply)
