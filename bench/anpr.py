"""ANPR benchmark: exact-plate accuracy and latency on a labelled folder.

    python -m bench.anpr DIR

``DIR`` follows the plates-dev layout: ``labels.csv`` with ``filename``,
``plate_text`` and ``kind`` (``full`` for whole scenes, ``crop`` for tight
plate crops). A scene counts as read when its labelled plate is among the
plates the reader finds in it (detector → warp → constrained recogniser,
with the fallback scale and the retry); a crop when the recogniser alone
reads it exactly. Latency is per frame on one thread (onnxruntime intra-op
threads = 1), scenes only. Last line:
``anpr_scene_acc=<0..1> anpr_crop_acc=<0..1> anpr_p50_ms=<ms>``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from camera_node.reader import PlateReader


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
    scene_ok, times, misses = 0, [], []
    for row in scenes:
        image = cv2.imread(str(args.dir / row["filename"]))
        if image is None:
            misses.append((row["filename"], row["plate_text"], "unreadable file"))
            continue
        started = time.perf_counter()
        found = reader.read(image)
        times.append((time.perf_counter() - started) * 1000)
        texts = [p.read.text for p in found]
        if row["plate_text"] in texts:
            scene_ok += 1
        else:
            misses.append((row["filename"], row["plate_text"], ",".join(texts) or "-"))
    crop_ok = 0
    for row in crops:
        image = cv2.imread(str(args.dir / row["filename"]))
        if image is not None and reader.recognise(image).text == row["plate_text"]:
            crop_ok += 1
    scene_acc = scene_ok / len(scenes) if scenes else 0.0
    crop_acc = crop_ok / len(crops) if crops else 0.0
    p50 = statistics.median(times) if times else 0.0
    p95 = float(np.percentile(times, 95)) if times else 0.0
    print(f"scenes: {scene_ok}/{len(scenes)} read exactly ({scene_acc:.3f})")
    print(f"crops:  {crop_ok}/{len(crops)} read exactly ({crop_acc:.3f})")
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
