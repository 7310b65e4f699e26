"""The receipt printer: ESC/POS over a serial line, through python-escpos.

Chinese text goes in the printer's Chinese mode (FS &) as GB18030; the
follow-up code is printed as text and as a native QR code (GS ( k, model 2,
module size 6, error correction L). Paper is checked (DLE EOT 4) before
printing: a printer without paper is a fault, and the kiosk shows the code
on screen instead. The commands used are the subset of Epson's ESC/POS
that 80 mm Chinese-market thermal printers share (docs/field-buses.md);
the page layout is the kiosk's, the serial line is pyserial's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from escpos.exceptions import Error as EscposError
from escpos.printer import Serial
from serial import SerialException

from edge.errors import HardwareError
from kiosk.errors import KioskError

logger = logging.getLogger(__name__)

CHINESE_ON, CHINESE_OFF = b"\x1c&", b"\x1c."


class PrinterError(KioskError, HardwareError):
    """The printer cannot print; ``reason`` is paper_out or offline."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReceiptLines:
    """What a receipt says."""

    title: str
    lines: tuple[str, ...]
    qr: str
    footer: str = ""


class ReceiptPrinter:
    """A thermal receipt printer on a serial line."""

    def __init__(self, device: str, *, baudrate: int = 9600) -> None:
        self.device = device
        self.baudrate = baudrate
        self._printer: Serial | None = None

    def _open(self) -> Serial:
        if self._printer is None:
            try:
                self._printer = Serial(
                    devfile=self.device, baudrate=self.baudrate, timeout=1, dsrdtr=False
                )
            except (SerialException, OSError, EscposError) as exc:
                raise PrinterError(
                    f"cannot open printer {self.device}: {exc}", reason="offline"
                ) from exc
        return self._printer

    def status(self) -> str:
        """``ok``, ``paper_out`` or ``offline``."""
        try:
            paper = self._open().paper_status()
        except PrinterError:
            return "offline"
        except (SerialException, OSError, EscposError):
            self.close()
            return "offline"
        return "paper_out" if paper == 0 else "ok"

    def print_receipt(self, receipt: ReceiptLines) -> None:
        """Print one receipt.

        Raises:
            PrinterError: no paper, or the printer does not answer.
        """
        state = self.status()
        if state != "ok":
            raise PrinterError(f"printer {state}", reason=state)
        p = self._open()
        try:
            p._raw(b"\x1b@" + CHINESE_ON)  # noqa: SLF001 - python-escpos's raw write
            p.set(align="center", bold=True, double_height=True)
            p._raw((receipt.title + "\n").encode("gb18030"))  # noqa: SLF001
            # back to normal size: ``double_height=False`` alone sends nothing,
            # and the whole receipt came out double height (ESC ! 0 resets it)
            p.set(align="left", bold=False, normal_textsize=True)
            for line in receipt.lines:
                p._raw((line + "\n").encode("gb18030"))  # noqa: SLF001
            p.qr(receipt.qr, native=True, size=6)
            if receipt.footer:
                p._raw((receipt.footer + "\n").encode("gb18030"))  # noqa: SLF001
            p._raw(CHINESE_OFF)  # noqa: SLF001
            p.cut()
        except (SerialException, OSError, EscposError) as exc:
            self.close()
            raise PrinterError(f"printing failed: {exc}", reason="offline") from exc

    def close(self) -> None:
        """Release the serial line."""
        if self._printer is not None:
            try:
                self._printer.close()
            except (SerialException, OSError, EscposError):  # pragma: no cover
                logger.debug("Printer close failed", exc_info=True)
            self._printer = None
