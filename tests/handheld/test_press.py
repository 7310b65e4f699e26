"""The SOS gesture: long press raises, a press within the window cancels."""

from __future__ import annotations

from handheld.press import PressState, on_level

KW = {"hold_s": 2.0, "cancel_s": 5.0}


def run(levels: list[tuple[float, bool]]) -> list[tuple[float, str]]:
    state = PressState()
    out: list[tuple[float, str]] = []
    for t, level in levels:
        state, action = on_level(state, pressed=level, now=t, **KW)
        if action:
            out.append((t, action))
    return out


def test_short_press_does_nothing() -> None:
    assert run([(0.0, True), (1.0, True), (1.9, True), (2.0, False)]) == []


def test_long_press_raises_once_while_held() -> None:
    levels = [(t / 10, True) for t in range(60)] + [(6.0, False)]
    assert run(levels) == [(2.0, "raise")]


def test_press_within_window_cancels_and_later_press_does_not() -> None:
    held = [(t / 10, True) for t in range(21)] + [(2.1, False)]
    assert run([*held, (4.0, True), (4.1, False)]) == [(2.0, "raise"), (4.0, "cancel")]
    late = run([*held, (7.5, True), (7.6, False)])
    assert late == [(2.0, "raise")]


def test_cancel_then_a_new_long_press_raises_again() -> None:
    held = [(t / 10, True) for t in range(21)] + [(2.1, False)]
    again = [(10 + t / 10, True) for t in range(21)]
    assert run([*held, (3.0, True), (3.1, False), *again]) == [
        (2.0, "raise"),
        (3.0, "cancel"),
        (12.0, "raise"),
    ]
