"""The plate reader: detector → perspective warp → constrained recogniser.

:class:`PlateReader` holds the two onnxruntime sessions (one thread each:
a Pi camera has four cores and other work to do) and turns a BGR frame into
:class:`Plate` values: text, confidence, likely alternatives, colour, box,
corners and the rectified crop. The frame is searched at ``detect_side``
pixels on its long side and, when nothing is found, once more at
``fallback_side`` (small, far plates) and at ``small_side`` (a plate too
near for the detector's anchors). A low-confidence read is tried again
with a wider margin around the plate and the better one kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import onnxruntime as ort

from camera_node.colour import Colour, plate_colour
from camera_node.detect import Detection, detect
from camera_node.grammar import Alphabet, PlateRead, best_plate, patterns_for
from camera_node.models import DETECTOR, RECOGNISER, model_path

if TYPE_CHECKING:
    from pathlib import Path

WARP_W, WARP_H = 168, 48
REC_H, REC_W = 48, 320


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


class PlateReader:
    """Read the plates in frames, on CPU."""

    def __init__(
        self,
        *,
        threads: int = 1,
        detect_side: int = 800,
        fallback_side: int = 1280,
        small_side: int = 480,
        retry_below: float = 0.9,
        min_score: float = 0.5,
    ) -> None:
        self.detector = _session(model_path(*DETECTOR), threads)
        self.recogniser = _session(model_path(*RECOGNISER), threads)
        table = self.recogniser.get_modelmeta().custom_metadata_map["character"]
        self.alphabet = Alphabet(("<blank>", *table.split("\n"), " "))
        self.detect_side = detect_side
        self.fallback_side = fallback_side
        self.small_side = small_side
        self.retry_below = retry_below
        self.min_score = min_score

    def recognise(self, crop: np.ndarray, *, colour: Colour | None = None) -> PlateRead:
        """Read one rectified plate crop (BGR), directed by the plate's colour.

        Without ``colour`` it is taken from the crop itself (a tight crop).
        """
        if colour is None:
            colour = plate_colour(crop)
        h, w = crop.shape[:2]
        width = min(REC_W, int(np.ceil(REC_H * w / h)))
        resized = cv2.resize(crop, (width, REC_H)).astype(np.float32) / 255.0
        canvas = np.zeros((REC_H, REC_W, 3), dtype=np.float32)
        canvas[:, :width] = (resized - 0.5) / 0.5
        probs = self.recogniser.run(None, {"x": canvas.transpose(2, 0, 1)[None]})[0]
        return best_plate(probs[0], self.alphabet, patterns=patterns_for(colour))

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

    def read(self, frame: np.ndarray) -> list[Plate]:
        """Every plate in a BGR frame, best first."""
        found = self._detect(frame, self.detect_side)
        if not found and max(frame.shape[:2]) > self.detect_side:
            found = self._detect(frame, self.fallback_side)
        if not found:  # a plate too large for the anchors at this scale
            found = self._detect(frame, self.small_side)
        plates = []
        for d in found:
            margin = 4
            crop = warp(frame, d.corners, margin=margin)
            colour = plate_colour(crop, margin)
            read = self.recognise(crop, colour=colour)
            if read.confidence < self.retry_below:
                wider = warp(frame, d.corners, margin=10)
                again = self.recognise(wider, colour=colour)
                if again.confidence > read.confidence:
                    crop, read, margin = wider, again, 10
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
