"""Settings of a detector node: where its card answers."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.settings import NodeSettings


class DetectorSettings(NodeSettings):
    """Node settings plus the detector card (``BALING_NODE_*`` as well)."""

    # A serial device or any pyserial URL (/dev/ttyUSB0, rfc2217://host:port)
    modbus_url: str = "/dev/ttyUSB0"
    baudrate: Annotated[int, Field(ge=1200, le=921_600)] = 19_200
    unit: Annotated[int, Field(ge=1, le=247)] = 1
    poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    stuck_on_s: Annotated[float, Field(gt=0)] = 180.0
    stuck_off_s: Annotated[float, Field(gt=0)] = 1800.0
