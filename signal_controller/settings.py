"""Settings of a signal cabinet: its controller's line and its junction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from edge.settings import NodeSettings


class SignalSettings(NodeSettings):
    """Node settings plus the controller (``BALING_NODE_*`` as well)."""

    # tcp:HOST:PORT, or a pyserial URL (/dev/ttyS0, rfc2217://…) for RS-232/485
    controller_url: str = "tcp:127.0.0.1:5100"
    # The junction: groups, stages, crossings, limits and the time-of-day
    # fallback plans (JSON, see signal_controller/cabinet.py).
    junction_file: Path = Path("junction.json")
    central_lost_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    controller_silent_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    tz: str = "Asia/Shanghai"
