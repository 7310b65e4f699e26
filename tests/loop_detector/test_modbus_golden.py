"""Golden Modbus RTU frames: the card and the node held to the specifications.

Every frame below is written by hand from a published source, not produced by
our code, so the simulated card and the node cannot agree on a mistake:

* PDUs from the MODBUS Application Protocol Specification V1.1b3 (§6.3 Read
  Holding Registers, §6.4 Read Input Registers, §6.6 Write Single Register,
  §6.12 Write Multiple Registers, §7 exception responses and codes);
* RTU frames (unit id + PDU + CRC, low CRC byte first) from the MODBUS over
  Serial Line Specification V1.02 (§2.5.1 frame, §6.2.2 CRC) and the
  Modicon PI-MBUS-300 reference guide's example on slave 17 (0x11), the
  vectors every Modbus implementation's test suite carries.

Where a frame is ours (the card's 72-register poll), its PDU follows §6.4
field by field and its CRC comes from :func:`spec_crc`, the serial-line
spec's algorithm written out here and checked against the published CRCs
first (``test_the_crc_is_the_serial_line_specs``).
"""

from __future__ import annotations

import select
import socket
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from pymodbus.pdu import ExceptionResponse

from edge.clock import ManualClock
from edge.node import build_agent
from firmware_sim.detector import DetectorCard
from loop_detector.agent import DetectorAgent
from loop_detector.settings import DetectorSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

T0 = datetime(2026, 11, 30, 0, 0, 0, tzinfo=UTC)


def h(text: str) -> bytes:
    """Bytes from the hex the documents print."""
    return bytes.fromhex(text)


# -- published frames (unit, PDU, CRC lo, CRC hi) ------------------------------------
# PI-MBUS-300 / serial line: read holding registers 108-110 (0x006B, 3) of slave 17
FC03_REQ_17 = h("11 03 00 6B 00 03 76 87")
# ... and its answer: 0xAE41 0x5652 0x4340
FC03_RSP_17 = h("11 03 06 AE 41 56 52 43 40 49 AD")
# Application protocol §6.4 example (read input register 9, i.e. address 0x0008,
# answering 0x000A) framed for slave 17: request and response
FC04_REQ_17 = h("11 04 00 08 00 01 B2 98")
FC04_RSP_17 = h("11 04 02 00 0A F8 F4")
# The CRC example every Modbus tutorial gives: slave 1, holding 0..9
FC03_REQ_1_TEN = h("01 03 00 00 00 0A C5 CD")
# §6.6 example (write register 2, address 0x0001, value 0x0003) for slave 1
FC06_REQ_1 = h("01 06 00 01 00 03 98 0B")
# §6.12 example (write registers 2-3, address 0x0001: 0x000A 0x0102), slave 17
FC16_REQ_17 = h("11 10 00 01 00 02 04 00 0A 01 02 C6 F0")
# §7 exception response: function 0x03 | 0x80, code 02 illegal data address
EXC_83_02_1 = h("01 83 02 C0 F1")
# PI-MBUS-300: read coils 20-56 (0x0013, 37) of slave 17
FC01_REQ_17 = h("11 01 00 13 00 25 0E 84")


def spec_crc(frame: bytes) -> bytes:
    """CRC-16 as the serial-line spec §6.2.2 computes it, low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes((crc & 0xFF, crc >> 8))


def test_the_crc_is_the_serial_line_specs() -> None:
    published = [
        FC03_REQ_17,
        FC03_RSP_17,
        FC04_REQ_17,
        FC04_RSP_17,
        FC03_REQ_1_TEN,
        FC06_REQ_1,
        FC16_REQ_17,
        EXC_83_02_1,
        FC01_REQ_17,
    ]
    for frame in published:
        assert spec_crc(frame[:-2]) == frame[-2:], frame.hex(" ")
    # serial line spec §6.2.2: the CRC of 02 07 is 0x1241, sent 41 12
    assert spec_crc(h("02 07")) == h("41 12")
    # the CRC catalogue's check value for CRC-16/MODBUS: "123456789" → 0x4B37
    assert spec_crc(b"123456789") == h("37 4B")


# -- the simulated card answers the specification's requests ------------------------
def test_the_card_answers_read_input_registers_as_in_the_spec() -> None:
    card = DetectorCard(2, unit=0x11)
    card.lanes[0].count = 0x000A_0000  # input register 8 (lane 1, high word) = 10
    assert card.answer(FC04_REQ_17) == FC04_RSP_17
    card.line.close()


def test_the_card_answers_its_holding_registers() -> None:
    card = DetectorCard(2)
    # §6.3 layout: 01 03 | 00 00 start | 00 05 quantity
    request = h("01 03 00 00 00 05 85 C9")
    # unit 1, 0xC0 = 192 (19,200 baud), parity 2 (even), 1 stop bit, sensitivity 5
    assert card.answer(request) == h("01 03 0A 00 01 00 C0 00 02 00 01 00 05 01 29")
    card.line.close()


def test_the_card_refuses_with_the_specs_exception_codes_and_changes_nothing() -> None:
    card = DetectorCard(2)
    before = (card.registers(), card.holding())
    # holding 0..9 and 108..110 are past its 5 holding registers: 02
    assert card.answer(FC03_REQ_1_TEN) == EXC_83_02_1
    assert card.answer(h("01 03 00 6B 00 03 74 17")) == EXC_83_02_1
    # read coils: not a function the card has: 01 illegal function
    to_17 = DetectorCard(2, unit=0x11)
    assert to_17.answer(FC01_REQ_17) == h("11 81 01 80 55")
    # write register 1 (baud rate, read-only): 02
    assert card.answer(FC06_REQ_1) == h("01 86 02 C3 A1")
    # write registers 1-2 (read-only): 02, nothing written
    assert to_17.answer(FC16_REQ_17) == h("11 90 02 CC 04")
    # sensitivity 10 is outside 1-9: 03 illegal data value
    assert card.answer(h("01 06 00 04 00 0A 48 0C")) == h("01 86 03 02 61")
    # quantity 0 and 126 (the spec allows 1-125): 03; past the 72 registers: 02
    assert card.answer(h("01 04 00 00 00 00 F0 0A")) == h("01 84 03 03 01")
    assert card.answer(h("01 04 00 00 00 7E 70 2A")) == h("01 84 03 03 01")
    assert card.answer(h("01 04 00 46 00 03 51 DE")) == h("01 84 02 C2 C1")
    # a write of two registers whose second is read-only writes neither
    assert card.answer(h("01 10 00 03 00 02 04 00 01 00 07 A3 B8")) == h(
        "01 90 02 CD C1"
    )
    assert (card.registers(), card.holding()) == before
    card.line.close()
    to_17.line.close()


def test_writes_to_writable_registers_take_effect() -> None:
    card = DetectorCard(2)
    # §6.6: the answer echoes the request
    assert card.answer(h("01 06 00 04 00 03 88 0A")) == h("01 06 00 04 00 03 88 0A")
    assert card.holding()[4] == 3
    # §6.12: the answer is function, start, quantity
    assert card.answer(h("01 10 00 04 00 01 02 00 09 67 D2")) == h(
        "01 10 00 04 00 01 40 08"
    )
    assert card.sensitivity == 9
    # a new unit id: the reply still comes from unit 1, then only 5 answers
    assert card.answer(h("01 06 00 00 00 05 49 C9")) == h("01 06 00 00 00 05 49 C9")
    assert card.answer(h("01 03 00 00 00 05 85 C9")) is None
    assert card.answer(h("05 04 00 00 00 01 30 4E")) == h("05 04 02 00 00 48 F0")
    card.line.close()


def test_the_card_is_silent_to_other_units_bad_crcs_broadcasts_and_when_dead() -> None:
    card = DetectorCard(2)
    assert card.answer(FC03_REQ_17) is None  # addressed to unit 17
    damaged = bytearray(h("01 03 00 00 00 05 85 C9"))
    damaged[-1] ^= 0x01
    assert card.answer(bytes(damaged)) is None
    assert card.answer(b"\x01\x03") is None
    # broadcast (unit 0) write of sensitivity 7: done, never answered (§4.1)
    assert card.answer(h("00 06 00 04 00 07 88 18")) is None
    assert card.sensitivity == 7
    card.answering = False
    assert card.answer(h("01 03 00 00 00 05 85 C9")) is None
    card.line.close()


# -- the node's requests, and the node fed the specification's responses -------------
class ScriptedCard:
    """The test plays the card: hand-written answers to hand-written requests.

    It listens on ``socket://`` (a serial device server's URL) because a pty
    refuses the even parity the node opens the line with.
    """

    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self.replies = replies
        self.heard: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conns: list[socket.socket] = []
        buffer = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.listener, *conns], [], [], 0.01)
            for item in ready:
                if item is self.listener:
                    conns.append(self.listener.accept()[0])
                else:
                    data = item.recv(512)
                    buffer += data
                    if not data:
                        conns.remove(item)
                        item.close()
            if not ready and buffer and conns:
                frame = bytes(buffer)
                buffer.clear()
                self.heard.append(frame)
                if frame in self.replies:
                    conns[-1].sendall(self.replies[frame])
        for conn in conns:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.listener.close()


# Our poll (§6.4 layout): unit 1, function 04, start 0x0000, quantity 0x0048 (72)
POLL_REQ_1 = h("01 04 00 00 00 48 F0 3C")
# its answer, written from the register map: 0x90 = 144 bytes, 72 words
POLL_RSP_1 = h(
    "01 04 90"
    " 00 00 00 02 01 02 00 00 00 00 00 00 00 00 00 00"  # status, 2 lanes, v1.2
    " 00 00 00 0A 00 00 17 70 00 01 00 00 00 01 00 00"  # lane 1: 10 veh, 6000 ms, on
    " 00 01 00 00 00 00 00 00 00 00 01 90 00 02 00 01"  # lane 2: 65536, 40.0 km/h
    + " 00" * 96  # lanes 3-8 unused
    + " A8 F7"
)


@pytest.fixture
def scripted(
    tmp_path: Path,
) -> Iterator[tuple[ScriptedCard, DetectorAgent]]:
    card = ScriptedCard(
        {
            FC03_REQ_17: FC03_RSP_17,
            FC04_REQ_17: FC04_RSP_17,
            FC03_REQ_1_TEN: EXC_83_02_1,
            POLL_REQ_1: POLL_RSP_1,
            h("02 04 00 00 00 48 F0 0F"): h("02 84 02 32 C1"),
            # unit 3 answers the poll's data with a damaged CRC
            h("03 04 00 00 00 48 F1 DE"): h("03") + POLL_RSP_1[1:-2] + h("00 00"),
        }
    )
    agent = build_agent(
        DetectorAgent,
        DetectorSettings(
            device_id="det-golden",
            kind="loop_detector",
            data_dir=tmp_path / "node",
            modbus_url=card.url,  # default framing: 19200 8E1, unit 1
        ),
        clock=ManualClock(T0),
    )
    yield card, agent
    agent.client.close()  # type: ignore[no-untyped-call]
    agent.outbox.close()
    agent.trust.close()
    card.close()


def test_the_nodes_modbus_client_sends_and_reads_the_specs_frames(
    scripted: tuple[ScriptedCard, DetectorAgent],
) -> None:
    card, agent = scripted
    assert agent.client.connect()
    answer = agent.client.read_holding_registers(0x6B, count=3, device_id=0x11)
    assert card.heard[-1] == FC03_REQ_17
    assert answer.registers == [0xAE41, 0x5652, 0x4340]
    answer = agent.client.read_input_registers(0x08, count=1, device_id=0x11)
    assert card.heard[-1] == FC04_REQ_17
    assert answer.registers == [0x000A]
    refused = agent.client.read_holding_registers(0, count=10, device_id=1)
    assert card.heard[-1] == FC03_REQ_1_TEN
    assert isinstance(refused, ExceptionResponse)
    assert (refused.function_code, refused.exception_code) == (0x83, 0x02)


def test_the_node_polls_with_the_specs_frame_and_reads_the_register_map(
    scripted: tuple[ScriptedCard, DetectorAgent],
) -> None:
    card, agent = scripted
    reading = agent.read()
    assert card.heard == [POLL_REQ_1]
    assert reading is not None
    one, two = reading.lanes
    assert (one.count, one.occupied_ms, one.presence, one.sensor) == (
        10,
        6000,
        True,
        "loop",
    )
    assert (two.count, two.speed_kmh, two.sensor, two.fault_bits) == (
        65536,
        40.0,
        "microwave",
        1,
    )
    assert agent.faults() == set()


def test_an_exception_answer_is_a_refusal_fault_not_data(
    scripted: tuple[ScriptedCard, DetectorAgent],
) -> None:
    card, agent = scripted
    agent.ds = agent.ds.model_copy(update={"unit": 2})
    assert agent.read() is None
    assert card.heard == [h("02 04 00 00 00 48 F0 0F")]
    assert agent.faults() == {"card_refused"}


def test_an_answer_with_a_bad_crc_is_silence_not_data(
    scripted: tuple[ScriptedCard, DetectorAgent],
) -> None:
    card, agent = scripted
    agent.ds = agent.ds.model_copy(update={"unit": 3})
    assert agent.read() is None
    assert card.heard[0] == h("03 04 00 00 00 48 F1 DE")
    assert agent.faults() == {"card_silent"}
