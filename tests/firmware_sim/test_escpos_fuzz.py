"""The ESC/POS decoder (the printer simulator) under any bytes, in any chunks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.printer import EscPosDecoder

# Mostly the bytes receipts are made of: text, ESC/GS/DLE commands, cuts.
BYTES = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"\x1b@",  # initialise
                b"\x1d\x56\x00",  # cut
                b"\x10\x04\x01",  # status request
                b"\x1ba\x01",  # centre
                "投诉受理回执\n".encode("gb18030"),
                b"\x1d(k\x03\x001P0",  # QR store, short
            ]
        ),
    ),
    max_size=30,
).map(b"".join)


@given(data=BYTES, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_any_bytes_decode_the_same_however_they_arrive(
    data: bytes, cuts: list[int]
) -> None:
    whole = EscPosDecoder()
    asked_whole = whole.feed(data)
    chunked = EscPosDecoder()
    asked: list[int] = []
    start = 0
    for cut in sorted(c for c in cuts if c < len(data)):
        asked += chunked.feed(data[start:cut])
        start = cut
    asked += chunked.feed(data[start:])
    assert asked == asked_whole
    assert [r.text for r in chunked.receipts] == [r.text for r in whole.receipts]
