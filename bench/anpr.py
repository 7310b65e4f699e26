"""ANPR benchmark: exact-plate accuracy and latency on a labelled folder.

    python -m bench.anpr DIR

``DIR`` follows the plates-dev layout: ``labels.csv`` with ``filename``,
``plate_text``, ``kind`` (``full`` for whole scenes, ``crop`` for tight
plate crops), ``box`` and ``source_repo``. A scene counts as read when its
labelled plate is among the plates the reader finds in it (detector →
warp → colour-directed constrained recogniser, with the extra scales and
the retry); a crop when the recogniser alone reads it exactly. Latency is
per frame on one thread (onnxruntime intra-op threads = 1), scenes only.

Besides the totals it prints accuracy per source repository (so a change
can be judged on a source it was not tuned on), per plate colour (eight
characters are green; otherwise the colour the reader gave the labelled
plate), per character position, and the misses counted by kind: not
found, wrong length, province, office letter, one serial character, more.
Last line: ``anpr_scene_acc=<0..1> anpr_crop_acc=<0..1> anpr_p50_ms=<ms>``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from camera_node.colour import plate_colour
from camera_node.reader import PlateReader

if TYPE_CHECKING:
    from camera_node.reader import Plate

POSITIONS = 8
MIN_IOU = 0.3


def failure_kind(truth: str, got: str | None) -> str:
    """What kind of miss reading ``truth`` as ``got`` is (``ok`` when exact)."""
    if got is None:
        return "not found"
    if len(got) != len(truth):
        return "length"
    wrong = [k for k, (a, b) in enumerate(zip(truth, got, strict=True)) if a != b]
    if len(wrong) > 1:
        return "several characters"
    return {(): "ok", (0,): "province", (1,): "office letter"}.get(
        tuple(wrong), "one serial character"
    )


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def labelled_plate(row: dict[str, str], found: list[Plate]) -> Plate | None:
    """The plate the reader found where the label is (by box, else by text)."""
    truth = row["plate_text"]
    exact = [p for p in found if p.read.text == truth]
    if exact:
        return exact[0]
    box = tuple(float(v) for v in row.get("box", "").split(",") if v.strip())
    if len(box) == 4:
        near = [(p, _iou(p.box, box)) for p in found]
        near = [(p, v) for p, v in near if v >= MIN_IOU]
        return max(near, key=lambda x: x[1])[0] if near else None

    def agreement(p: Plate) -> int:
        return sum(a == b for a, b in zip(p.read.text, truth, strict=False))

    return max(found, key=agreement) if found else None


class Tally:
    """Exact reads per group, per position, and misses by kind."""

    def __init__(self) -> None:
        self.groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.position: list[list[int]] = [[0, 0] for _ in range(POSITIONS)]
        self.kinds: Counter[str] = Counter()

    def add(self, truth: str, got: str | None, groups: tuple[str, ...]) -> None:
        """Count one labelled plate read as ``got`` (``None``: not found)."""
        for g in groups:
            self.groups[g][0] += got == truth
            self.groups[g][1] += 1
        self.kinds[failure_kind(truth, got)] += 1
        if got is not None and len(got) == len(truth):
            for k, (a, b) in enumerate(zip(truth, got, strict=True)):
                self.position[k][0] += a == b
                self.position[k][1] += 1

    def lines(self, name: str) -> list[str]:
        """The tally as printable lines."""
        out = [
            f"{name} {g}: {ok}/{n} ({ok / n:.3f})"
            for g, (ok, n) in sorted(self.groups.items())
        ]
        pos = " ".join(
            f"{k + 1}:{ok / n:.3f}" for k, (ok, n) in enumerate(self.position) if n
        )
        out.append(f"{name} per position (same-length reads): {pos}")
        misses = ", ".join(
            f"{kind} {n}" for kind, n in self.kinds.most_common() if kind != "ok"
        )
        out.append(f"{name} misses by kind: {misses or 'none'}")
        return out


def run_scenes(
    reader: PlateReader, folder: Path, scenes: list[dict[str, str]]
) -> tuple[int, list[float], list[tuple[str, str, str]], Tally]:
    """Read every scene: exact count, latencies, misses and the tally."""
    ok, times, misses, tally = 0, [], [], Tally()
    for row in scenes:
        truth = row["plate_text"]
        image = cv2.imread(str(folder / row["filename"]))
        if image is None:
            misses.append((row["filename"], truth, "unreadable file"))
            tally.add(truth, None, ("source " + row.get("source_repo", "?"),))
            continue
        started = time.perf_counter()
        found = reader.read(image)
        times.append((time.perf_counter() - started) * 1000)
        plate = labelled_plate(row, found)
        colour = plate.colour if plate else "none"
        got = plate.read.text if plate else None
        tally.add(
            truth,
            got,
            (
                "source " + row.get("source_repo", "?"),
                "colour " + _colour(truth, colour),
            ),
        )
        if got == truth:
            ok += 1
        else:
            misses.append(
                (row["filename"], truth, ",".join(p.read.text for p in found) or "-")
            )
    return ok, times, misses, tally


def _colour(truth: str, seen: str) -> str:
    return "green" if len(truth) == POSITIONS else seen


def run_crops(
    reader: PlateReader, folder: Path, crops: list[dict[str, str]]
) -> tuple[int, Tally]:
    """Recognise every crop: exact count and the tally."""
    ok, tally = 0, Tally()
    for row in crops:
        truth = row["plate_text"]
        image = cv2.imread(str(folder / row["filename"]))
        got = reader.recognise(image).text if image is not None else None
        colour = plate_colour(image) if image is not None else "none"
        tally.add(
            truth,
            got,
            (
                "source " + row.get("source_repo", "?"),
                "colour " + _colour(truth, colour),
            ),
        )
        ok += got == truth
    return ok, tally


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    rows = list(csv.DictReader((args.dir / "labels.csv").open(encoding="utf-8")))
    reader = PlateReader(threads=1)
    scenes = [r for r in rows if r["kind"] == "full"]
    crops = [r for r in rows if r["kind"] == "crop"]
    warm = cv2.imread(str(args.dir / scenes[0]["filename"])) if scenes else None
    if warm is not None:
        reader.read(warm)  # first-run allocations are not the steady state
    scene_ok, times, misses, scene_tally = run_scenes(reader, args.dir, scenes)
    crop_ok, crop_tally = run_crops(reader, args.dir, crops)
    scene_acc = scene_ok / len(scenes) if scenes else 0.0
    crop_acc = crop_ok / len(crops) if crops else 0.0
    p50 = statistics.median(times) if times else 0.0
    p95 = float(np.percentile(times, 95)) if times else 0.0
    print(f"scenes: {scene_ok}/{len(scenes)} read exactly ({scene_acc:.3f})")
    print(*scene_tally.lines("  scenes"), sep="\n")
    print(f"crops:  {crop_ok}/{len(crops)} read exactly ({crop_acc:.3f})")
    print(*crop_tally.lines("  crops"), sep="\n")
    print(f"latency per scene frame, 1 thread: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    if args.show_misses:
        for name, truth, got in misses:
            print(f"  miss {name}: {truth} read as {got}")
    print(
        f"anpr_scene_acc={scene_acc:.4f} anpr_crop_acc={crop_acc:.4f} "
        f"anpr_p50_ms={p50:.1f}"
    )


if __name__ == "__main__":
    main()
