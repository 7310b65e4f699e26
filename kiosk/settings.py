"""Settings of a kiosk: its screen's web server, central, the receipt printer."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.settings import NodeSettings


class KioskSettings(NodeSettings):
    """Node settings plus the kiosk's devices (``BALING_NODE_*`` as well).

    ``cert_file`` and ``key_file`` (the node's, from enrolment: ``node.pem``
    and ``node.key``) are also the kiosk's credential for central's kiosk
    API: it signs every request with them. Without them central refuses the
    kiosk's status look-ups, slots and bookings (401).
    """

    central_url: str = "http://127.0.0.1:8000"  # requests signed with cert/key_file
    http_host: str = "127.0.0.1"  # Chromium in kiosk mode on the same machine
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    # pyserial URL of the ESC/POS printer; "" when the kiosk has none.
    printer_url: str = "/dev/ttyUSB0"
    printer_baud: Annotated[int, Field(ge=1200, le=921_600)] = 9600
    idle_s: Annotated[float, Field(ge=10, le=600)] = 60.0
    countdown_s: Annotated[float, Field(ge=3, le=60)] = 10.0
    content_every_s: Annotated[float, Field(ge=5, le=3600)] = 60.0
