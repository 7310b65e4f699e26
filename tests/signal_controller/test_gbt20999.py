"""The controller protocol codec: round trips, and a noisy line never stops it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signal_controller.gbt20999 import (
    END,
    ESC,
    START,
    Frame,
    FrameError,
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
    encode_plan,
    encode_running,
)

values = st.builds(
    Value,
    cls=st.integers(0, 255),
    obj=st.integers(0, 255),
    attr=st.integers(0, 255),
    index=st.integers(0, 255),
    data=st.binary(max_size=64),
)
frames = st.builds(
    Frame,
    type=st.sampled_from(FrameType),
    sender=st.integers(0, 2**32 - 1),
    receiver=st.integers(0, 2**32 - 1),
    seq=st.integers(0, 2**16 - 1),
    values=st.lists(values, max_size=6).map(tuple),
)


def test_crc_is_the_standards_polynomial() -> None:
    # x16+x12+x2+1, initial 0, MSB first; the check value of "123456789"
    # (see test_gbt20999_golden for the peer implementation it is held to)
    assert crc16(b"123456789") == 0x5BB8


@settings(max_examples=300)
@given(frame=frames)
def test_every_frame_round_trips_and_markers_inside_are_escaped(frame: Frame) -> None:
    raw = encode(frame)
    assert decode(raw) == frame
    inside = raw[1:-1]
    i = 0
    while i < len(inside):  # every marker or escape byte comes after an escape
        if inside[i] == ESC:
            assert inside[i + 1] in {START, END, ESC}
            i += 2
            continue
        assert inside[i] not in {START, END}
        i += 1


@settings(max_examples=200)
@given(
    good=st.lists(frames, min_size=1, max_size=5),
    noise=st.lists(st.binary(max_size=40), min_size=6, max_size=6),
    chunk=st.integers(1, 64),
)
def test_frames_survive_noise_between_them_in_any_chunking(
    good: list[Frame], noise: list[bytes], chunk: int
) -> None:
    # noise never contains a start marker here, so every good frame must come out
    cleaned = [n.replace(bytes((START,)), b"") for n in noise]
    stream = cleaned[0] + b"".join(
        encode(f) + cleaned[(i + 1) % 6] for i, f in enumerate(good)
    )
    reader = FrameReader()
    out = []
    for i in range(0, len(stream), chunk):
        out += reader.feed(stream[i : i + chunk])
    assert out == good


@settings(max_examples=300)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    reader = FrameReader()
    for frame in reader.feed(data):
        assert isinstance(frame, Frame)


def test_damage_is_counted_by_reason_and_the_next_frame_still_arrives() -> None:
    good = Frame(FrameType.HEARTBEAT, 1, 2, 7)
    raw = bytearray(encode(good))
    raw[5] ^= 0xFF  # a bit error
    reader = FrameReader()
    assert reader.feed(bytes(raw) + encode(good)) == [good]
    assert reader.errors == {"crc": 1}
    truncated = encode(good)[:-3]
    assert reader.feed(truncated + encode(good)) == [good]
    assert reader.errors["truncated"] == 1
    with pytest.raises(FrameError, match="markers"):
        decode(b"\x00\x01")


def test_plan_and_running_state_values() -> None:
    plan = encode_plan((30.0, 8.5, 15.0, 6.0), 75.5, 12.0, 3.0, 1.0)
    assert decode_plan(plan) == ((30.0, 8.5, 15.0, 6.0), 75.5, 12.0, 3.0, 1.0)
    running = encode_running(Mode.FLASH, 3, 12.4, "plan-7")
    assert decode_running(running) == (Mode.FLASH, 3, 12.4, "plan-7")
    with pytest.raises(FrameError, match="plan"):
        decode_plan(b"\x00")
    with pytest.raises(FrameError, match="running"):
        decode_running(b"\x09\x00\x00\x00")
    assert int(Obj.PLAN) == 4  # the value layout is part of the contract
