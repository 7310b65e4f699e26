"""A plate's colour from its pixels: blue, yellow, green, white or black.

Pure (numpy/OpenCV on an array). The background is sampled in the strips
between the plate's frame and its characters, top and bottom (the green
new-energy plate fades from white at the top to green at the bottom). A
saturated background names its hue; an unsaturated one is white when it is
brighter than the characters band and black when darker — a comparison
that survives night and glare, where absolute brightness does not.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Colour = Literal["blue", "yellow", "green", "white", "black"]
HUES: tuple[tuple[Colour, int, int], ...] = (
    ("yellow", 10, 35),
    ("green", 35, 95),
    ("blue", 95, 135),
)


def plate_colour(crop: np.ndarray, margin: int = 0) -> Colour:
    """Classify a rectified plate crop (BGR) whose plate starts ``margin`` px in."""
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)[margin : crop.shape[0] - margin]
    h = hsv.shape[0]
    # Between the frame (~6 mm) and the characters (25 mm from the top of 140).
    top = hsv[int(0.07 * h) : int(0.16 * h)].reshape(-1, 3)
    bottom = hsv[int(0.84 * h) : int(0.93 * h)].reshape(-1, 3)
    for strip in (bottom, top):
        saturated = strip[(strip[:, 1] > 70) & (strip[:, 2] > 40)]  # noqa: PLR2004
        if len(saturated) > 0.4 * len(strip):
            hue = float(np.median(saturated[:, 0]))
            for name, low, high in HUES:
                if low <= hue < high:
                    return name
    background = float(np.median(np.concatenate([top, bottom])[:, 2]))
    # The characters pull the band's mean away from the background: down on a
    # white plate (dark characters), up on a black one.
    band = float(np.mean(hsv[int(0.3 * h) : int(0.7 * h), margin : -margin or None, 2]))
    return "white" if background >= band else "black"
