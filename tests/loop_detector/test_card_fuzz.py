"""The simulated card's firmware under any frame: silence or a well-formed answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.detector import DetectorCard, crc16

card = DetectorCard(4)  # one card for every example; its line is never started

PDUS = st.one_of(
    st.binary(min_size=1, max_size=20),
    st.builds(
        lambda fc, rest: bytes((fc,)) + rest,
        st.sampled_from([0x01, 0x03, 0x04, 0x06, 0x10, 0x2B, 0x83]),
        st.binary(max_size=12),
    ),
)


@settings(max_examples=400)
@given(unit=st.integers(0, 255), pdu=PDUS, good_crc=st.booleans())
def test_any_frame_gets_silence_or_a_checked_answer(
    unit: int, pdu: bytes, *, good_crc: bool
) -> None:
    card.unit, card.sensitivity, card.answering = 1, 5, True
    body = bytes((unit,)) + pdu
    frame = body + (crc16(body) if good_crc else b"\x00\x00")
    before = card.holding()
    reply = card.answer(frame)
    if reply is None:
        return
    assert good_crc or crc16(body) == b"\x00\x00"
    assert unit == 1  # only its own unit id is ever answered
    assert crc16(reply[:-2]) == reply[-2:]
    assert reply[0] == 1
    if reply[1] & 0x80:  # an exception: the code, and nothing changed
        assert reply[1] == pdu[0] | 0x80
        assert reply[2] in {1, 2, 3}
        assert len(reply) == 5
        assert card.holding() == before
    else:
        assert reply[1] == pdu[0]
        assert reply[1] in {0x03, 0x04, 0x06, 0x10}
