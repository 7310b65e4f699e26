"""Settings of a detector node: where its card answers and how the line is framed.

The defaults are the card's documented factory framing (19200 baud, 8E1,
unit 1; see :mod:`loop_detector.registers`). Reading the card is left to
:mod:`loop_detector.agent`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from edge.settings import NodeSettings
from loop_detector.registers import DEFAULT_FRAMING, DEFAULT_UNIT, Framing


class DetectorSettings(NodeSettings):
    """Node settings plus the detector card (``BALING_NODE_*`` as well)."""

    # A serial device or any pyserial URL (/dev/ttyUSB0, rfc2217://host:port)
    modbus_url: str = "/dev/ttyUSB0"
    baudrate: Annotated[int, Field(ge=1200, le=921_600)] = DEFAULT_FRAMING.baudrate
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Annotated[int, Field(ge=1, le=2)] = DEFAULT_FRAMING.stopbits
    bytesize: Annotated[int, Field(ge=8, le=8)] = DEFAULT_FRAMING.bytesize
    unit: Annotated[int, Field(ge=1, le=247)] = DEFAULT_UNIT
    # how long one request waits for the card's answer
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 1.0
    poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    stuck_on_s: Annotated[float, Field(gt=0)] = 180.0
    stuck_off_s: Annotated[float, Field(gt=0)] = 1800.0

    @field_validator("parity", mode="before")
    @classmethod
    def _parity_letter(cls, value: object) -> object:
        """Accept ``even``/``odd``/``none`` and lower case as well."""
        if isinstance(value, str):
            names = {"NONE": "N", "EVEN": "E", "ODD": "O"}
            return names.get(value.strip().upper(), value.strip().upper())
        return value

    @property
    def framing(self) -> Framing:
        """The line's framing as one value."""
        return Framing(
            baudrate=self.baudrate,
            parity=self.parity,
            stopbits=self.stopbits,
            bytesize=self.bytesize,
        )
