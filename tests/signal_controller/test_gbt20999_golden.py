"""Golden cabinet-protocol frames, written by hand from GB/T 20999-2017's rules.

The standard's text is not at hand in full; what is used here is its link
layer as quoted by independent implementations (its 协议约定 a-e and
Appendix A frame fields, in lining1111/RVDataFusionServer's
``signalControl/signalControlCom.h`` and the OpenATC controller's
``OpenATCCommWithGB20999Thread``): start 0x7E, end 0x7D, escape 0x5C put in
front of 0x7E/0x7D/0x5C inside a frame and left out of the CRC, big-endian
fields, CRC-16 with polynomial x16+x12+x2+1 over everything between the
start and end bytes, frame types 0x10 … 0x80. The header and value layout
are ours (documented in :mod:`signal_controller.gbt20999` as deviations).

Each frame below was written byte by byte from that description; its CRC
comes from :func:`openatc_crc16`, OpenATC's CRC routine transcribed
statement for statement (a different loop from our codec's), so the codec
cannot agree with itself on a mistake.
"""

from __future__ import annotations

import socket
import threading
import time

from signal_controller.gbt20999 import (
    Frame,
    FrameReader,
    FrameType,
    Mode,
    Obj,
    Value,
    crc16,
    decode,
    decode_plan,
    decode_running,
    encode,
)
from signal_controller.link import CABINET_ID, CONTROLLER_ID, ControllerLink


def openatc_crc16(buffer: bytes) -> int:
    """OpenATC's ``Crc16`` (COpenATCCommWithGB20999Thread), line for line."""
    crc = 0x0000
    for byte in buffer:
        i = 0x80
        while i != 0:
            if crc & 0x8000:  # noqa: SIM108 - kept as OpenATC writes it
                crc = ((crc << 1) ^ 0x1005) & 0xFFFF  # x16+x12+x2+1
            else:
                crc = (crc << 1) & 0xFFFF
            if byte & i:
                crc ^= 0x1005
            i >>= 1
    return crc


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# Heartbeat query (0x70) from the cabinet (id 1) to controller 0x2001, seq 7:
#   len 000D | ver 10 | sender 00000001 | receiver 00002001 | seq 0007 |
#   type 70 | 0 values | CRC 3558
HEARTBEAT = h("7E 00 0D 10 00 00 00 01 00 00 20 01 00 07 70 00 35 58 7D")
# Its reply (0x80) from the controller, same sequence number: CRC F7DE
HEARTBEAT_REPLY = h("7E 00 0D 10 00 00 20 01 00 00 00 01 00 07 80 00 F7 DE 7D")
# Query (0x10) of class 06 (running state) with receiver 0x00007E7D and
# seq 0x5C01: each 7E, 7D, 5C inside gets a 5C in front; CRC 8B18 is over
# the unescaped bytes, length 0x13 counts them unescaped too
QUERY_ESCAPED = h(
    "7E 00 13 10 00 00 00 01 00 00 5C 7E 5C 7D 5C 5C 01 10 01"
    " 06 01 01 00 00 00 8B 18 7D"
)
# Set (0x30) of a plan, seq 42: value class 04 obj 01 attr 01 element 00,
# 11 bytes: cycle 600 (60.0 s) | offset 0 | yellow 1E (3.0 s) | all-red 14
# (2.0 s) | 2 greens: 012C (30.0 s), 00C8 (20.0 s). CRC 39B1
SET_PLAN = h(
    "7E 00 1E 10 00 00 00 01 00 00 20 01 00 2A 30 01"
    " 04 01 01 00 00 0B 02 58 00 00 1E 14 02 01 2C 00 C8 39 B1 7D"
)
# Trap (0x60) from the controller: running state mode 1 (plan), stage 2,
# 125 tenths (007D: the 7D is escaped) into it, plan "p1". CRC A365
REPORT = h(
    "7E 00 19 10 00 00 20 01 00 00 00 01 00 05 60 01"
    " 06 01 01 00 00 06 01 02 00 5C 7D 70 31 A3 65 7D"
)


def unescaped_body(raw: bytes) -> bytes:
    """What lies between the start and end bytes, escapes removed (by hand)."""
    out, i, inside = bytearray(), 0, raw[1:-1]
    while i < len(inside):
        if inside[i] == 0x5C:
            i += 1
        out.append(inside[i])
        i += 1
    return bytes(out)


def test_our_crc_is_openatcs_and_the_golden_crcs_check() -> None:
    for data in (b"", b"123456789", bytes(range(256)), b"\x7e\x7d\x5c" * 9):
        assert crc16(data) == openatc_crc16(data)
    for raw in (HEARTBEAT, HEARTBEAT_REPLY, QUERY_ESCAPED, SET_PLAN, REPORT):
        body = unescaped_body(raw)
        assert openatc_crc16(body[:-2]) == int.from_bytes(body[-2:], "big")
        assert int.from_bytes(body[:2], "big") == len(body) - 4


def test_the_codec_writes_the_golden_frames() -> None:
    assert encode(Frame(FrameType.HEARTBEAT, 1, 0x2001, 7)) == HEARTBEAT
    assert encode(Frame(FrameType.HEARTBEAT_REPLY, 0x2001, 1, 7)) == HEARTBEAT_REPLY
    query = Frame(FrameType.QUERY, 1, 0x7E7D, 0x5C01, (Value(Obj.RUNNING),))
    assert encode(query) == QUERY_ESCAPED
    plan = Value(Obj.PLAN, data=h("02 58 00 00 1E 14 02 01 2C 00 C8"))
    assert encode(Frame(FrameType.SET, 1, 0x2001, 42, (plan,))) == SET_PLAN


def test_the_codec_reads_the_golden_frames() -> None:
    assert decode(HEARTBEAT_REPLY) == Frame(FrameType.HEARTBEAT_REPLY, 0x2001, 1, 7)
    query = decode(QUERY_ESCAPED)
    assert (query.receiver, query.seq) == (0x7E7D, 0x5C01)
    (plan,) = decode(SET_PLAN).values
    assert decode_plan(plan.data) == ((30.0, 20.0), 60.0, 0.0, 3.0, 2.0)
    report = decode(REPORT)
    assert report.type == FrameType.REPORT
    (running,) = report.values
    assert decode_running(running.data) == (Mode.PLAN, 2, 12.5, "p1")


def test_the_frame_types_are_the_standards() -> None:
    assert {t.name: int(t) for t in FrameType} == {
        "QUERY": 0x10,
        "QUERY_REPLY": 0x20,
        "QUERY_ERROR": 0x21,
        "SET": 0x30,
        "SET_REPLY": 0x40,
        "ERROR": 0x41,
        "BROADCAST": 0x50,
        "REPORT": 0x60,
        "HEARTBEAT": 0x70,
        "HEARTBEAT_REPLY": 0x80,
    }


def test_a_stream_of_golden_frames_with_noise_and_damage_reads_right() -> None:
    damaged = bytearray(SET_PLAN)
    damaged[20] ^= 0x01  # a bit error inside the plan: CRC
    bad_escape = h("7E 00 0D 10 5C 41 7D")  # 5C must precede 7E, 7D or 5C
    stream = (
        b"\x00\xff\x7d"  # line noise, a stray end byte
        + REPORT
        + bytes(damaged)
        + bad_escape
        + QUERY_ESCAPED[:9]  # cut off: a new frame starts
        + HEARTBEAT_REPLY
    )
    reader = FrameReader()
    out = []
    for i in range(0, len(stream), 5):
        out += reader.feed(stream[i : i + 5])
    assert [f.type for f in out] == [FrameType.REPORT, FrameType.HEARTBEAT_REPLY]
    assert reader.errors == {"garbage": 1, "crc": 1, "escape": 1, "truncated": 1}


def test_the_cabinets_line_sends_and_takes_golden_frames() -> None:
    """The cabinet's ControllerLink against a controller played by hand."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    heard = bytearray()

    def controller() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(REPORT)
            conn.settimeout(5)
            while len(heard) < len(HEARTBEAT):
                heard.extend(conn.recv(64))

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    link = ControllerLink(f"tcp:127.0.0.1:{port}")
    link.start()
    try:
        report = link.frames.get(timeout=5)
        assert report == decode(REPORT)
        assert (report.sender, report.receiver) == (CONTROLLER_ID, CABINET_ID)
        deadline = time.monotonic() + 5
        seq = None
        while seq is None and time.monotonic() < deadline:
            seq = link.send(FrameType.HEARTBEAT)
            time.sleep(0.05)
        assert seq is not None
        thread.join(timeout=5)
        # by hand: header, the link's sequence number, type 70, no values, CRC
        body = h("00 0D 10 00 00 00 01 00 00 20 01") + seq.to_bytes(2, "big")
        body += h("70 00")
        body += openatc_crc16(body).to_bytes(2, "big")
        assert unescaped_body(bytes(heard)) == body
        assert heard[:1] == b"\x7e"
        assert heard[-1:] == b"\x7d"
    finally:
        link.stop()
        server.close()
