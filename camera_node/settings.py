"""Settings of a camera node: where its frames come from."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.settings import NodeSettings


class CameraSettings(NodeSettings):
    """Node settings plus the camera (``BALING_NODE_*`` as well)."""

    # cv:0 (USB), cv:rtsp://..., cv:/path/file.mp4, picamera2, spool:/dir (simulator)
    camera_url: str = "picamera2"
    threads: Annotated[int, Field(ge=1, le=8)] = 1
