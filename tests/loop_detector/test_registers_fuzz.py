"""The detector card's register map under any input: a reading or a clear error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loop_detector.registers import LANE_BASE, MAX_LANES, READ_COUNT, diff32, parse

WORD = st.integers(0, 0xFFFF)


@given(st.lists(WORD, max_size=READ_COUNT + 10))
def test_any_registers_parse_or_are_refused_by_name(words: list[int]) -> None:
    refused = not (
        len(words) >= LANE_BASE * 2
        and 1 <= words[1] <= MAX_LANES
        and len(words) >= LANE_BASE * (words[1] + 1)
    )
    if refused:
        with pytest.raises(ValueError, match="registers"):  # says what was wrong
            parse(words)
        return
    reading = parse(words)
    assert 1 <= len(reading.lanes) <= MAX_LANES
    for lane in reading.lanes:
        assert 0 <= lane.count < 1 << 32
        assert lane.speed_kmh is None or 0 < lane.speed_kmh <= 0xFFFF / 10


@given(
    lanes=st.integers(1, MAX_LANES),
    counts=st.lists(st.integers(0, (1 << 32) - 1), min_size=MAX_LANES, max_size=8),
)
def test_counters_round_trip_high_word_first(lanes: int, counts: list[int]) -> None:
    words = [0] * READ_COUNT
    words[1] = lanes
    for n in range(1, lanes + 1):
        base = LANE_BASE * n
        words[base], words[base + 1] = divmod(counts[n - 1], 1 << 16)
    reading = parse(words)
    assert [lane.count for lane in reading.lanes] == counts[:lanes]


@given(st.integers(0, (1 << 32) - 1), st.integers(0, 10_000))
def test_a_wrapping_counter_still_gives_the_increase(old: int, more: int) -> None:
    assert diff32((old + more) % (1 << 32), old) == more


def test_too_few_registers_say_how_many_were_expected() -> None:
    with pytest.raises(ValueError, match=f"expected {READ_COUNT} registers, got 3"):
        parse([0, 1, 0])
