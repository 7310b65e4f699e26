"""Frame sources: OpenCV on a video file, the simulator's spool, bad URLs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

from camera_node.capture import CaptureError, OpenCvSource, SpoolSource, open_source
from edge.errors import SettingsError

if TYPE_CHECKING:
    from pathlib import Path


def test_video_file_through_opencv(tmp_path: Path) -> None:
    path = tmp_path / "street.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 5, (320, 240))
    for n in range(3):
        writer.write(np.full((240, 320, 3), 40 * (n + 1), np.uint8))
    writer.release()
    source = open_source(f"cv:{path}")
    assert isinstance(source, OpenCvSource)
    frames = [source.read() for _ in range(4)]
    source.close()
    assert [f is not None for f in frames] == [True, True, True, False]
    with pytest.raises(CaptureError, match="cannot open"):
        open_source(f"cv:{tmp_path / 'missing.avi'}")


def test_spool_takes_the_oldest_and_refuses_junk(tmp_path: Path) -> None:
    source = open_source(f"spool:{tmp_path / 'spool'}")
    assert isinstance(source, SpoolSource)
    assert source.read() is None
    ok, jpeg = cv2.imencode(".jpg", np.zeros((10, 20, 3), np.uint8))
    assert ok
    (tmp_path / "spool" / "002.jpg").write_bytes(bytes(jpeg))
    (tmp_path / "spool" / "001.jpg").write_bytes(b"junk")
    with pytest.raises(CaptureError, match=r"corrupt frame 001\.jpg"):
        source.read()
    frame = source.read()
    assert frame is not None
    assert frame.shape == (10, 20, 3)
    assert source.read() is None


@pytest.mark.parametrize("url", ["usb:0", "cv:", "spool:", "camera"])
def test_bad_camera_urls_are_named(url: str) -> None:
    with pytest.raises(SettingsError, match=re.escape("cv:<index|url|file>")):
        open_source(url)
