"""The reader's colour-directed path, its hypotheses on the wire, real crops."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from camera_node.grammar import MAX_ALTERNATIVES
from camera_node.reader import PlateReader
from edge.protocol.plates import Alternative, PlateEventBody, is_plate
from firmware_sim.plates import render_plate, scene

PLATES_DEV = Path("/work/shared/data/plates-dev")


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


@pytest.mark.parametrize(
    "text",
    ["湘AD11166", "皖AD14488", "粤BF00888", "渝AD11111", "湘A12345D", "苏E10006F"],
)
def test_green_plates_with_doubled_digits_keep_eight_characters(
    reader: PlateReader, text: str
) -> None:
    rng = random.Random(text)
    found = reader.read(scene(rng, text, "green").image)
    assert found, f"no plate found in {text}"
    assert found[0].colour == "green"
    assert found[0].read.text == text


def test_hypotheses_are_valid_bounded_and_fit_the_wire(reader: PlateReader) -> None:
    rng = random.Random(5)
    found = reader.read(scene(rng, "赣F41Q08", "blue", blur=1.2).image)
    read = found[0].read
    assert read.text == "赣F41Q08"
    assert 0 < len(read.alternatives) <= MAX_ALTERNATIVES
    assert all(is_plate(t) and t != read.text for t, _ in read.alternatives)
    body = PlateEventBody(
        read_id="r1",
        text=read.text,
        confidence=round(read.confidence, 4),
        alternatives=[
            Alternative(text=t, confidence=round(min(c, 1.0), 4))
            for t, c in read.alternatives
        ],
        colour=found[0].colour,
        seen_at=datetime(2026, 12, 5, tzinfo=UTC),
        evidence={},
    )
    assert [a.text for a in body.alternatives] == [t for t, _ in read.alternatives]


def test_a_plate_filling_the_frame_is_found(reader: PlateReader) -> None:
    # A close-up: the plate runs to the frame's edges.
    frame = cv2.resize(render_plate("湘A88888", "blue"), None, fx=2.0, fy=2.0)
    found = reader.read(frame)
    assert [p.read.text for p in found] == ["湘A88888"]


def test_reading_is_deterministic(reader: PlateReader) -> None:
    shot = scene(random.Random(9), "鄂A12345", "blue").image
    first, second = reader.read(shot), reader.read(shot)
    assert first[0].read == second[0].read


@pytest.mark.skipif(not PLATES_DEV.is_dir(), reason="plates-dev is not on this machine")
def test_real_crops_are_read(reader: PlateReader) -> None:
    with (PLATES_DEV / "labels.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "crop"][::5]
    ok = 0
    for row in rows:
        image = cv2.imread(str(PLATES_DEV / row["filename"]))
        assert image is not None, row["filename"]
        ok += reader.recognise(image).text == row["plate_text"]
    assert ok / len(rows) >= 0.95


def two_row_plate(text: str) -> np.ndarray:
    """A yellow two-row plate (440 × 220): province and office over the serial."""
    row = render_plate(text, "yellow")  # 440 × 140, characters 45 × 90 from x 15
    plate = np.empty((220, 440, 3), np.uint8)
    plate[:] = row[10, 220]
    top = cv2.resize(row[25:115, 15:130], (160, 60))
    plate[12:72, 140:300] = top
    bottom = cv2.resize(row[25:115, 150:425], (400, 130))
    plate[80:210, 20:420] = bottom
    return plate


def test_a_two_row_plate_is_read_as_one(reader: PlateReader) -> None:
    frame = np.full((540, 960, 3), 90, np.uint8)
    plate = two_row_plate("湘AK9331")
    frame[200:420, 260:700] = cv2.resize(plate, (440, 220))
    found = reader.read(frame)
    assert [p.read.text for p in found] == ["湘AK9331"]
