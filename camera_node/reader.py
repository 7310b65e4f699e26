"""The plate reader: detector → perspective warp → constrained recogniser.

:class:`PlateReader` holds the two onnxruntime sessions (one thread each:
a Pi camera has four cores and other work to do) and turns a BGR frame into
:class:`Plate` values: text, confidence, likely alternatives, colour, box,
corners and the rectified crop. The frame is searched at ``detect_side``
pixels on its long side and, when nothing is found, once more at
``fallback_side`` (small, far plates) and at ``small_side`` (a plate too
near for the detector's anchors; also when a plate's box runs out of the
frame, the anchors' mistake on a close-up). The plate's colour picks the
grammar's patterns (eight characters on green). A low-confidence read is
tried again with a wider margin around the plate and the better one kept;
an unsure province character is then voted over both views. An unsure read
of a squat plate (a two-row plate: lorries, buses, trailers) is tried
again with its top row put before its bottom row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import onnxruntime as ort

from camera_node.colour import Colour, plate_colour
from camera_node.detect import Detection, detect
from camera_node.grammar import (
    Alphabet,
    PlateRead,
    best_plate,
    patterns_for,
    vote_province,
)
from camera_node.models import DETECTOR, RECOGNISER, model_path

if TYPE_CHECKING:
    from pathlib import Path

WARP_W, WARP_H = 168, 48
REC_H, REC_W = 48, 320
TWO_ROW_W, TWO_ROW_H = 220, 110
SEVEN_CHARS = 7
TWO_ROW_BELOW = 2.6  # width / height: one row is 3.1 (440 × 140), two rows 2.0
OUTSIDE_SLACK = 0.08  # of the box's size: how far a box may poke out of the frame


@dataclass(frozen=True, slots=True)
class Plate:
    """One plate found in a frame."""

    read: PlateRead
    colour: Colour
    box: tuple[float, float, float, float]
    corners: tuple[tuple[float, float], ...]
    crop: np.ndarray  # the rectified plate, BGR


def _session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def warp(
    image: np.ndarray, corners: tuple[tuple[float, float], ...], margin: int
) -> np.ndarray:
    """Rectify a plate from its corners (BR, BL, TL, TR, as the detector gives)."""
    br, bl, tl, tr = corners
    src = np.array([tl, tr, br, bl], dtype=np.float32)
    dst = np.array(
        [
            [margin, margin],
            [WARP_W - margin, margin],
            [WARP_W - margin, WARP_H - margin],
            [margin, WARP_H - margin],
        ],
        dtype=np.float32,
    )
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(
        image, matrix, (WARP_W, WARP_H), borderMode=cv2.BORDER_REPLICATE
    )


def _inside(d: Detection, width: int, height: int) -> bool:
    """Whether a detection's box lies in the frame, give or take a little."""
    x1, y1, x2, y2 = d.box
    dx, dy = OUTSIDE_SLACK * (x2 - x1), OUTSIDE_SLACK * (y2 - y1)
    return x1 > -dx and y1 > -dy and x2 < width + dx and y2 < height + dy


def aspect(corners: tuple[tuple[float, float], ...]) -> float:
    """A plate's width over its height, from its corners (BR, BL, TL, TR)."""
    br, bl, tl, tr = (np.array(c) for c in corners)
    width = np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)
    height = np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)
    return float(width / max(float(height), 1e-6))


def warp_two_rows(
    image: np.ndarray, corners: tuple[tuple[float, float], ...]
) -> np.ndarray:
    """A two-row plate (440 × 220 mm) laid out as one row for the recogniser.

    The top row (province and office letter, in the middle of the plate) is
    scaled to the height of the bottom row (the serial) and put before it.
    """
    br, bl, tl, tr = corners
    w, h = TWO_ROW_W, TWO_ROW_H
    src = np.array([tl, tr, br, bl], dtype=np.float32)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    plate = cv2.warpPerspective(
        image,
        cv2.getPerspectiveTransform(src, dst),
        (w, h),
        borderMode=cv2.BORDER_REPLICATE,
    )
    top = plate[int(0.05 * h) : int(0.38 * h), int(0.25 * w) : int(0.75 * w)]
    bottom = plate[int(0.33 * h) : int(0.97 * h)]
    scaled = cv2.resize(
        top, (top.shape[1] * bottom.shape[0] // top.shape[0], bottom.shape[0])
    )
    return np.concatenate([scaled, bottom], axis=1)


class PlateReader:
    """Read the plates in frames, on CPU."""

    def __init__(
        self,
        *,
        threads: int = 1,
        detect_side: int = 800,
        fallback_side: int = 1280,
        small_side: int = 480,
        closeup_side: int = 320,
        retry_below: float = 0.9,
        province_sure: float = 0.9,
        min_score: float = 0.5,
    ) -> None:
        self.detector = _session(model_path(*DETECTOR), threads)
        self.recogniser = _session(model_path(*RECOGNISER), threads)
        table = self.recogniser.get_modelmeta().custom_metadata_map["character"]
        self.alphabet = Alphabet(("<blank>", *table.split("\n"), " "))
        self.detect_side = detect_side
        self.fallback_side = fallback_side
        self.small_side = small_side
        self.closeup_side = closeup_side
        self.retry_below = retry_below
        self.province_sure = province_sure
        self.min_score = min_score

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """The recogniser's per-time-step class probabilities for a crop (BGR)."""
        h, w = crop.shape[:2]
        width = min(REC_W, int(np.ceil(REC_H * w / h)))
        resized = cv2.resize(crop, (width, REC_H)).astype(np.float32) / 255.0
        canvas = np.zeros((REC_H, REC_W, 3), dtype=np.float32)
        canvas[:, :width] = (resized - 0.5) / 0.5
        probs: np.ndarray = self.recogniser.run(
            None, {"x": canvas.transpose(2, 0, 1)[None]}
        )[0][0]
        return probs

    def recognise(self, crop: np.ndarray, *, colour: Colour | None = None) -> PlateRead:
        """Read one rectified plate crop (BGR), directed by the plate's colour.

        Without ``colour`` it is taken from the crop itself (a tight crop).
        """
        if colour is None:
            colour = plate_colour(crop)
        probs = self.probabilities(crop)
        return best_plate(probs, self.alphabet, patterns=patterns_for(colour))

    def _detect(self, frame: np.ndarray, side: int) -> list[Detection]:
        h, w = frame.shape[:2]
        scale = min(1.0, side / max(h, w))
        small = frame
        if scale < 1.0:
            size = (int(w * scale), int(h * scale))
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        found = detect(self.detector, small, min_score=self.min_score)
        return [
            Detection(
                box=(
                    d.box[0] / scale,
                    d.box[1] / scale,
                    d.box[2] / scale,
                    d.box[3] / scale,
                ),
                score=d.score,
                corners=tuple((x / scale, y / scale) for x, y in d.corners),
            )
            for d in found
        ]

    def find(self, frame: np.ndarray) -> list[Detection]:
        """The plates' places in a frame, trying more scales only when needed.

        The first pass (``detect_side``) is kept when it finds plates that lie
        inside the frame. When it finds nothing, the frame is searched again
        larger (``fallback_side``: small, far plates) and smaller
        (``small_side``, then ``closeup_side``: a close-up, the plate too
        large for the detector's anchors). A plate whose box runs well out of
        the frame is a close-up the anchors got wrong: the smaller scales are
        tried, and their plates kept if they lie inside.
        """
        h, w = frame.shape[:2]
        sides = [self.detect_side]
        if max(h, w) > self.detect_side:
            sides.append(self.fallback_side)
        sides += [self.small_side, self.closeup_side]
        first: list[Detection] = []
        ceiling = self.fallback_side
        tried: set[int] = set()
        for side in sides:
            if first and side > ceiling:
                continue  # out of the frame: a close-up, larger scales won't help
            if min(side, max(h, w)) in tried:
                continue  # a small frame is searched at its own size once
            tried.add(min(side, max(h, w)))
            found = self._detect(frame, side)
            if not found:
                continue
            if all(_inside(d, w, h) for d in found):
                return found
            if not first:
                first, ceiling = found, side
        return first

    def read(self, frame: np.ndarray) -> list[Plate]:
        """Every plate in a BGR frame, best first."""
        plates = []
        for d in self.find(frame):
            margin = 4
            crop = warp(frame, d.corners, margin=margin)
            colour = plate_colour(crop, margin)
            patterns = patterns_for(colour)
            probs = self.probabilities(crop)
            read = best_plate(probs, self.alphabet, patterns=patterns)
            if read.confidence < self.retry_below:
                wider = warp(frame, d.corners, margin=10)
                more = self.probabilities(wider)
                again = best_plate(more, self.alphabet, patterns=patterns)
                if again.confidence > read.confidence:
                    crop, read, margin = wider, again, 10
                if read.chars[0] < self.province_sure:
                    read = vote_province(read, [probs, more], self.alphabet)
            if read.confidence < self.retry_below and aspect(d.corners) < TWO_ROW_BELOW:
                rows = warp_two_rows(frame, d.corners)
                # Two-row plates (lorries, trailers) have seven characters.
                seven = tuple((p, 0.0) for p, _ in patterns if len(p) == SEVEN_CHARS)
                two = best_plate(
                    self.probabilities(rows), self.alphabet, patterns=seven
                )
                if two.confidence > read.confidence:
                    read = two  # the evidence keeps the plate as it is
            plates.append(
                Plate(
                    read=read,
                    colour=colour,
                    box=d.box,
                    corners=d.corners,
                    crop=crop,
                )
            )
        return sorted(plates, key=lambda p: -p.read.confidence)
