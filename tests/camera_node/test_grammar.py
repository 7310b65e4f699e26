"""Golden cases for the plate patterns and the colour-directed decoder."""

from __future__ import annotations

import numpy as np
import pytest

from camera_node.grammar import (
    ANY_SEVEN,
    MAX_ALTERNATIVES,
    NEW_ENERGY_LARGE,
    NEW_ENERGY_SMALL,
    PLAIN,
    WHITE,
    Alphabet,
    best_plate,
    decode,
    patterns_for,
    vote_province,
)

CHARS = "湘赣渝粤ADEFLOQ0123456789警"


def alphabet() -> Alphabet:
    return Alphabet(("<blank>", *CHARS, " "))


def probs_for(
    path: list[dict[str, float] | str], alpha: Alphabet, floor: float = 1e-4
) -> np.ndarray:
    """A CTC probability matrix: each step a character (``_`` blank) or a mix."""
    index = {c: i for i, c in enumerate(alpha.chars)}
    out = np.full((len(path), len(alpha.chars)), floor)
    for t, step in enumerate(path):
        mix = {step: 0.95} if isinstance(step, str) else step
        for ch, p in mix.items():
            out[t, 0 if ch == "_" else index[ch]] = p
    normalised: np.ndarray = out / out.sum(axis=1, keepdims=True)
    return normalised


def steps(text: str) -> list[dict[str, float] | str]:
    """A clean path spelling ``text`` with a blank after every character."""
    out: list[dict[str, float] | str] = []
    for ch in text:
        out += [ch, "_"]
    return out


def test_new_energy_patterns_follow_ga36() -> None:
    # Small: D/F (A-K) first, then a letter or digit, then four digits.
    assert "D" in NEW_ENERGY_SMALL[2]
    assert "F" in NEW_ENERGY_SMALL[2]
    assert "L" in NEW_ENERGY_SMALL[3]
    assert all(p == "0123456789" for p in NEW_ENERGY_SMALL[4:])
    # Large: five digits, then D or F.
    assert all(p == "0123456789" for p in NEW_ENERGY_LARGE[2:7])
    assert NEW_ENERGY_LARGE[7] == "DF"
    # No I or O anywhere in a serial; O only as a white plate's office.
    colours = ("blue", "yellow", "green", "white", "black")
    for pattern, _ in (pair for c in colours for pair in patterns_for(c)):
        assert all("I" not in p and "O" not in p for p in pattern[2:])
    assert "O" in PLAIN[1]  # 粤O plates are blue
    assert "O" in WHITE[1]
    assert "警" in WHITE[6]
    assert "警" not in PLAIN[6]


def test_green_reads_doubled_digits_as_eight_characters() -> None:
    alpha = alphabet()
    # 湘A D11166 where the blank between the doubled 1s is weak: free
    # decoding would merge them into D1116 (seven characters).
    path = [*steps("湘AD1"), {"1": 0.6, "_": 0.4}, "1", "_", "1", "_", "6", "_", "6"]
    probs = probs_for(path, alpha)
    seven = best_plate(probs, alpha, patterns=((PLAIN, 0.0),))
    assert len(seven.text) == 7
    green = best_plate(probs, alpha, patterns=patterns_for("green"))
    assert green.text == "湘AD11166"


def test_new_energy_serial_ends_in_digits_not_look_alike_letters() -> None:
    alpha = alphabet()
    # After the second serial character, a small new-energy plate has only
    # digits: 4, 4 and 1 that look like A, L and L to the recogniser.
    path = [
        *steps("湘AD1"),
        {"A": 0.55, "4": 0.4},
        "_",
        {"L": 0.5, "4": 0.45},
        "_",
        {"L": 0.55, "1": 0.4},
        "_",
        *steps("8"),
    ]
    read = best_plate(probs_for(path, alpha), alpha, patterns=patterns_for("green"))
    assert read.text == "湘AD14418"
    # The same path on a plain seven-character grammar keeps the letters.
    assert (
        "L"
        in best_plate(probs_for(path[:-2], alpha), alpha, patterns=((PLAIN, 0.0),)).text
    )


def test_large_new_energy_plate() -> None:
    alpha = alphabet()
    read = best_plate(
        probs_for(steps("粤A12345D"), alpha), alpha, patterns=patterns_for("green")
    )
    assert read.text == "粤A12345D"


def test_suffixes_follow_the_colour() -> None:
    alpha = alphabet()
    # A 警 that is as likely as a 1 on a blue plate is a 1; on white, 警.
    path = [*steps("粤O1234"), {"警": 0.5, "1": 0.45}, "_"]
    probs = probs_for(path, alpha)
    assert best_plate(probs, alpha, patterns=patterns_for("blue")).text == "粤O12341"
    read = best_plate(probs, alpha, patterns=patterns_for("white"))
    assert read.text == "粤O1234警"


def test_province_vote_over_two_views() -> None:
    alpha = alphabet()
    near = probs_for([{"赣": 0.5, "渝": 0.45}, "_", *steps("A12345")], alpha)
    wide = probs_for([{"渝": 0.8, "赣": 0.15}, "_", *steps("A12345")], alpha)
    read = best_plate(near, alpha, patterns=patterns_for("blue"))
    assert read.text == "赣A12345"
    voted = vote_province(read, [near, wide], alpha)
    assert voted.text == "渝A12345"
    assert voted.chars[0] > 0.5
    assert "赣A12345" in dict(voted.alternatives)
    assert vote_province(read, [near], alpha) == read  # one view is no vote


def test_other_patterns_need_a_clear_win_off_their_colour() -> None:
    alpha = alphabet()
    # A blue-looking plate whose path fits eight characters only slightly
    # better stays seven; a clear eight-character path wins anyway.
    clear = best_plate(
        probs_for(steps("湘AD12345"), alpha), alpha, patterns=patterns_for("blue")
    )
    assert clear.text == "湘AD12345"
    assert any(len(t) == 7 for t, _ in clear.alternatives)


def test_alternatives_are_bounded_valid_and_ranked() -> None:
    alpha = alphabet()
    path = [
        {"渝": 0.5, "赣": 0.45},
        "_",
        *steps("A"),
        {"F": 0.5, "E": 0.45},
        "_",
        *steps("1234"),
    ]
    read = best_plate(probs_for(path, alpha), alpha, patterns=patterns_for("blue"))
    assert read.text == "渝AF1234"
    texts = [t for t, _ in read.alternatives]
    assert "赣AF1234" in texts
    assert "渝AE1234" in texts
    assert len(read.alternatives) <= MAX_ALTERNATIVES
    confs = [c for _, c in read.alternatives]
    assert confs == sorted(confs, reverse=True)
    assert all(c <= read.confidence for c in confs)
    assert read.text not in texts


def test_decode_takes_a_length_or_a_pattern() -> None:
    alpha = alphabet()
    probs = probs_for(steps("湘A12345"), alpha)
    by_length, s1 = decode(probs, alpha, 7)
    by_pattern, s2 = decode(probs, alpha, ANY_SEVEN)
    assert by_length.text == by_pattern.text == "湘A12345"
    assert s1 == pytest.approx(s2)
