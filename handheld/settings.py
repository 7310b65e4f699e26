"""Settings of a handheld: where its GNSS receiver and SOS button are."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.settings import NodeSettings


class HandheldSettings(NodeSettings):
    """Node settings plus the handheld's devices (``BALING_NODE_*`` as well)."""

    # pyserial URL: /dev/ttyAMA0 on a Pi, a pty path or socket://host:port in CI.
    gnss_url: str = "/dev/ttyAMA0"
    gnss_baud: Annotated[int, Field(ge=1200, le=921_600)] = 9600
    sos_button: str = "gpio:17"  # or file:/path (the simulator pin)
