"""The plate reader on rendered plates of every colour, and its pure parts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from camera_node.colour import plate_colour
from camera_node.grammar import Alphabet, PlateRead, best_plate, decode
from camera_node.reader import PlateReader
from camera_node.vote import similar, vote
from edge.protocol.plates import check_plate, is_plate, positions
from firmware_sim.plates import COLOURS, random_plate, render_plate, scene


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


@pytest.mark.parametrize("colour", COLOURS)
def test_every_colour_is_read_with_its_colour(reader: PlateReader, colour: str) -> None:
    rng = random.Random(colour)
    good = 0
    for n in range(6):
        text = random_plate(rng, colour, province="湘鄂粤京川赣"[n])  # type: ignore[arg-type]
        shot = scene(rng, text, colour, night=n == 4, glare=n == 5)  # type: ignore[arg-type]
        found = reader.read(shot.image)
        assert found, f"no plate found in {text}"
        best = found[0]
        good += best.read.text == text and best.colour == colour
        assert best.read.alternatives
    assert good >= 5


def test_green_plates_have_eight_characters(reader: PlateReader) -> None:
    rng = random.Random(8)
    text = random_plate(rng, "green")
    assert len(text) == 8
    found = reader.read(scene(rng, text, "green").image)
    assert found[0].read.text == text


def test_an_empty_street_has_no_plates(reader: PlateReader) -> None:
    assert reader.read(np.full((540, 960, 3), 120, np.uint8)) == []


def test_crop_colour_of_a_flat_plate() -> None:
    for colour in COLOURS:
        crop = render_plate("湘F12345" if colour != "green" else "湘FD12345", colour)
        small = crop[::3, ::3]
        assert plate_colour(small) == colour


def alphabet() -> Alphabet:
    return Alphabet(("<blank>", *"湘鄂FAB0123456789D", " "))


def probs_for(path: str, alpha: Alphabet, p: float = 0.9) -> np.ndarray:
    """A CTC probability matrix whose best path spells ``path`` (``_`` = blank)."""
    index = {c: i for i, c in enumerate(alpha.chars)}
    out = np.full((len(path), len(alpha.chars)), (1 - p) / (len(alpha.chars) - 1))
    for t, ch in enumerate(path):
        out[t, 0 if ch == "_" else index[ch]] = p
    return out


def test_decode_follows_the_grammar_and_repeats_need_a_blank() -> None:
    alpha = alphabet()
    read, _ = decode(probs_for("湘_F_1_1__2_3_3", alpha), alpha, 7)
    assert read.text == "湘F11233"
    # Without the blank, the doubled 1 collapses and a length of 7 is impossible
    # from this path alone: the decoder still returns the best valid plate.
    best = best_plate(probs_for("湘F1_2_3_4_5", alpha), alpha)
    assert is_plate(best.text)
    assert best.text.startswith("湘F")


def test_decode_reports_confidences_and_alternatives() -> None:
    alpha = alphabet()
    probs = probs_for("湘_F_0_1_2_3_4", alpha)
    d = alpha.chars.index("D")
    zero = alpha.chars.index("0")
    probs[4, zero], probs[4, d] = 0.55, 0.4
    read = best_plate(probs, alpha)
    assert read.text == "湘F01234"
    assert read.chars[2] == pytest.approx(0.55)
    alt = dict(read.alternatives)
    assert alt["湘FD1234"] == pytest.approx(read.confidence * 0.4 / 0.55)


def test_plate_grammar() -> None:
    assert is_plate("湘F12345")
    assert is_plate("湘FD12345")
    assert is_plate("粤O1234警")
    assert not is_plate("湘F1234")
    assert not is_plate("湘FI2345")  # no I in a serial
    assert check_plate(" 湘f·12345 ") == "湘F12345"
    with pytest.raises(ValueError, match="character 1"):
        check_plate("XF12345")
    with pytest.raises(ValueError, match="7 or 8"):
        positions(6)


def test_votes_outweigh_one_bad_frame() -> None:
    good = PlateRead("湘F12345", 0.9, (0.95,) * 7)
    bad = PlateRead("湘F12B45", 0.6, (0.95, 0.95, 0.95, 0.95, 0.5, 0.95, 0.95))
    voted = vote([good, bad, good])
    assert voted.text == "湘F12345"
    assert ("湘F12B45", 0.6) in voted.alternatives
    assert similar("湘F12345", "湘F12B45")
    assert not similar("湘F12345", "鄂A99999")
    with pytest.raises(ValueError, match="at least one"):
        vote([])
