"""Synthetic Chinese number plates and street scenes to read them in.

Renders plates of every colour the county sees — blue (small cars), yellow
(large vehicles, learners), green new-energy (8 characters, the white-green
gradient), white (police, with a red 警) and black (Hong Kong / Macau and
embassy) — in the standard 440 × 140 mm layout, with the province character
in Noto Sans CJK and the serial in a condensed sans. :func:`scene` puts a
plate on a car-ish background with perspective, blur, glare or night, and
returns the plate's four corners. Fonts come from Debian packages
(``fonts-noto-cjk``, ``fonts-dejavu-core``); nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edge.protocol.plates import DIGITS, LETTERS, PROVINCES
from firmware_sim.errors import SimulatorError

if TYPE_CHECKING:
    import random

Colour = Literal["blue", "yellow", "green", "white", "black"]
COLOURS: tuple[Colour, ...] = ("blue", "yellow", "green", "white", "black")
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)
# Background and character colours (RGB).
STYLE: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "blue": ((18, 62, 170), (245, 245, 245)),
    "yellow": ((240, 190, 20), (20, 20, 20)),
    "green": ((120, 200, 120), (20, 20, 20)),
    "white": ((240, 240, 240), (20, 20, 20)),
    "black": ((20, 20, 20), (245, 245, 245)),
}
PLATE_W, PLATE_H = 440, 140


def _glyph(ch: str, cjk: bool) -> Image.Image:  # noqa: FBT001
    """One character as a tight alpha mask."""
    font = _font(CJK_FONTS if cjk else LATIN_FONTS, 120)
    box = font.getbbox(ch)
    mask = Image.new("L", (int(box[2] - box[0]), int(box[3] - box[1])), 0)
    ImageDraw.Draw(mask).text((-box[0], -box[1]), ch, font=font, fill=255)
    return mask


class FontMissingError(SimulatorError, FileNotFoundError):
    """The CJK or Latin font is not installed."""


@lru_cache(maxsize=8)
def _font(candidates: tuple[str, ...], size: int) -> ImageFont.FreeTypeFont:
    for path in candidates:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    raise FontMissingError(
        f"expected one of {list(candidates)}; install fonts-noto-cjk and "
        "fonts-dejavu-core (scripts/setup does)"
    )


def random_plate(rng: random.Random, colour: Colour, province: str = "湘") -> str:
    """A valid plate text for ``colour`` (green plates have 8 characters)."""
    office = rng.choice(LETTERS)
    serial_chars = LETTERS + DIGITS
    if colour == "green":
        # New energy: D/F (or A-K) then digits, small cars.
        return (
            province
            + office
            + rng.choice("DF")
            + "".join(rng.choice(DIGITS) for _ in range(5))
        )
    serial = "".join(rng.choice(serial_chars) for _ in range(5))
    if colour == "white":
        return province + office + serial[:4] + "警"
    return province + office + serial


def render_plate(text: str, colour: Colour) -> np.ndarray:
    """The plate as a BGR image of 440 × 140 pixels (1 px per mm)."""
    bg, fg = STYLE[colour]
    img = Image.new("RGB", (PLATE_W, PLATE_H), bg)
    draw = ImageDraw.Draw(img)
    if colour == "green":  # white-to-green gradient from the top
        for y in range(PLATE_H):
            f = y / PLATE_H
            shade = tuple(int(255 * (1 - f) + c * f) for c in bg)
            draw.line([(0, y), (PLATE_W, y)], fill=shade)
    edge = fg if colour != "green" else (40, 40, 40)
    draw.rounded_rectangle(
        [4, 4, PLATE_W - 5, PLATE_H - 5], radius=10, outline=edge, width=3
    )
    n = len(text)
    char_w, char_h, space, dot = (45, 90, 9, 22) if n == 7 else (40, 90, 7, 20)  # noqa: PLR2004
    x = (PLATE_W - (n * char_w + (n - 1) * space + dot)) / 2
    top = (PLATE_H - char_h) // 2
    for i, ch in enumerate(text):
        ink = (200, 20, 20) if ch == "警" else fg
        glyph = _glyph(ch, ch in PROVINCES or ch in "学警挂港澳")
        # Plate characters are tall and narrow: stretch the glyph into its cell.
        cell = glyph.resize((char_w, char_h), Image.Resampling.LANCZOS)
        img.paste(Image.new("RGB", cell.size, ink), (int(x), top), cell)
        x += char_w + space
        if i == 1:  # the dot between the office letter and the serial
            draw.ellipse([x - 2, 66, x + 6, 74], fill=fg)
            x += dot
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


@dataclass(frozen=True, slots=True)
class Scene:
    """A rendered street scene and where its plate is."""

    image: np.ndarray  # BGR
    text: str
    colour: Colour
    corners: tuple[
        tuple[float, float], ...
    ]  # bottom-right, bottom-left, top-left, top-right


def scene(
    rng: random.Random,
    text: str,
    colour: Colour,
    *,
    size: tuple[int, int] = (960, 540),
    plate_width: float = 190.0,
    centre_y: float | None = None,
    tilt: float = 0.12,
    blur: float = 0.0,
    glare: bool = False,
    night: bool = False,
) -> Scene:
    """A car's rear with the plate in perspective, in a frame of ``size`` (w, h).

    ``centre_y`` places the plate (a fraction of the height; random if None).
    """
    w, h = size
    base = rng.randint(60, 160)
    img: np.ndarray = np.full((h, w, 3), base, dtype=np.uint8)
    # Road, car body and light fittings: enough texture for the detector to reject.
    cv2.rectangle(img, (0, int(h * 0.7)), (w, h), (70, 70, 75), -1)
    car = tuple(
        int(v)
        for v in rng.choice(
            [(30, 30, 160), (200, 200, 200), (40, 40, 40), (150, 80, 20)]
        )
    )
    cx = w / 2 + rng.uniform(-w * 0.15, w * 0.15)
    cy = h * (centre_y if centre_y is not None else rng.uniform(0.5, 0.6))
    cw = plate_width * 4.2
    cv2.rectangle(
        img,
        (int(cx - cw / 2), int(cy - cw * 0.35)),
        (int(cx + cw / 2), int(cy + cw * 0.2)),
        car,
        -1,
    )
    for side in (-1, 1):
        lx = int(cx + side * cw * 0.38)
        cv2.ellipse(
            img,
            (lx, int(cy - cw * 0.12)),
            (int(cw * 0.07), int(cw * 0.03)),
            0,
            0,
            360,
            (30, 30, 200),
            -1,
        )
    plate = render_plate(text, colour)
    pw, ph = plate_width, plate_width * PLATE_H / PLATE_W
    dx = rng.uniform(-tilt, tilt) * pw
    dy = rng.uniform(-tilt, tilt) * ph
    tl = (cx - pw / 2 + dx, cy - ph / 2 + dy)
    tr = (cx + pw / 2 - dx, cy - ph / 2 - dy)
    br = (cx + pw / 2 + dx * 0.5, cy + ph / 2 - dy)
    bl = (cx - pw / 2 - dx * 0.5, cy + ph / 2 + dy)
    src = np.array(
        [[0, 0], [PLATE_W, 0], [PLATE_W, PLATE_H], [0, PLATE_H]], dtype=np.float32
    )
    dst = np.array([tl, tr, br, bl], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(plate, matrix, (w, h))
    mask = cv2.warpPerspective(
        np.full((PLATE_H, PLATE_W), 255, np.uint8), matrix, (w, h)
    )
    img[mask > 0] = warped[mask > 0]
    if glare:
        overlay = img.copy()
        gx, gy = int(cx + rng.uniform(-pw / 2, pw / 2)), int(cy + rng.uniform(-ph, ph))
        cv2.ellipse(
            overlay,
            (gx, gy),
            (int(pw * 0.25), int(ph * 0.4)),
            30,
            0,
            360,
            (255, 255, 255),
            -1,
        )
        img = cv2.addWeighted(overlay, 0.35, img, 0.65, 0)
    if blur > 0:
        k = max(1, int(blur * 2) * 2 + 1)
        img = cv2.GaussianBlur(img, (k, k), blur)
    if night:
        img = (img.astype(np.float32) * 0.45).astype(np.uint8)
        noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, 6, img.shape)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    corners = (br, bl, tl, tr)
    return Scene(
        image=img,
        text=text,
        colour=colour,
        corners=tuple((float(x), float(y)) for x, y in corners),
    )
