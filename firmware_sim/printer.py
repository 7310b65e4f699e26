"""An ESC/POS receipt printer on a pty that reads back what it printed.

It decodes the commands a kiosk sends — initialise, Chinese mode (FS &,
text in GB18030), alignment and emphasis, QR codes (GS ( k: store, print),
cut — into receipts of text lines and QR contents, and answers real-time
status requests (DLE EOT): paper present, or out when :attr:`paper_out` is
set. Tests and ``baling up`` read the receipts back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from dataclasses import dataclass, field

from firmware_sim.gnss import Pty, open_pty

logger = logging.getLogger(__name__)

ESC, GS, FS, DLE, LF = 0x1B, 0x1D, 0x1C, 0x10, 0x0A
# Parameter bytes after ESC x, FS x and GS x (Epson ESC/POS Command Reference);
# a command not listed takes none.
ESC_ARGS = {
    ord(c): n
    for c, n in {
        **dict.fromkeys("a!E-GMtV{3JdRrU eT", 1),
        "$": 2,
        "\\": 2,
        "c": 2,
        "p": 3,
    }.items()
}
FS_ARGS = {ord(c): n for c, n in {"!": 1, "-": 1, "W": 1, "C": 1, "S": 2}.items()}
ONE_ARG_GS = frozenset(b"!BbfhHwL")  # GS x n (L takes two; handled below)
PAPER_OK, PAPER_OUT, ONLINE = 0x12, 0x72, 0x16


@dataclass
class Receipt:
    """One printed receipt."""

    lines: list[str] = field(default_factory=list)
    qr: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All lines as one text."""
        return "\n".join(self.lines)


class EscPosDecoder:
    """Turns ESC/POS bytes into receipts (pure; no I/O)."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self._current = Receipt()
        self._line = bytearray()
        self._qr_store = b""
        self._buf = bytearray()
        self.status_requests: list[int] = []

    def _flush_line(self) -> None:
        self._current.lines.append(
            self._line.decode("gb18030", errors="replace").rstrip()
        )
        self._line.clear()

    def feed(self, data: bytes) -> list[int]:
        """Take bytes; return the status requests (DLE EOT n) seen, in order."""
        self._buf += data
        asked: list[int] = []
        while self._buf:
            used = self._step(asked)
            if used == 0:
                break  # a command that is not complete yet
            del self._buf[:used]
        return asked

    def _step(self, asked: list[int]) -> int:  # noqa: C901, PLR0911 - a byte-code dispatcher
        b = self._buf
        first = b[0]
        if first == LF:
            self._flush_line()
            return 1
        if first == DLE:
            if len(b) < 3:  # noqa: PLR2004
                return 0
            if b[1] == 0x04:  # noqa: PLR2004 - DLE EOT n
                asked.append(b[2])
            return 3
        if first == ESC:
            if len(b) < 2:  # noqa: PLR2004
                return 0
            size = 2 + ESC_ARGS.get(b[1], 0)
            return size if len(b) >= size else 0
        if first == FS:  # FS & / FS . (Chinese mode on/off) take no parameter
            if len(b) < 2:  # noqa: PLR2004
                return 0
            size = 2 + FS_ARGS.get(b[1], 0)
            return size if len(b) >= size else 0
        if first == GS:
            return self._gs(b)
        if first < 0x20 and first != 0x09:  # noqa: PLR2004 - other control bytes
            return 1
        self._line.append(first)
        return 1

    def _gs(self, b: bytearray) -> int:  # noqa: C901, PLR0911 - GS command dispatcher
        if len(b) < 3:  # noqa: PLR2004
            return 0
        cmd = b[1]
        if cmd == ord("V"):  # cut: the receipt is done
            size = 4 if b[2] in (65, 66) else 3  # GS V m, or GS V m n (feed, cut)
            if len(b) < size:
                return 0
            if self._line:
                self._flush_line()
            self.receipts.append(self._current)
            self._current = Receipt()
            return size
        if cmd == ord("("):  # GS ( fn pL pH: pL + 256 pH parameter bytes follow
            if len(b) < 5:  # noqa: PLR2004
                return 0
            size = b[3] + 256 * b[4]
            if len(b) < 5 + size:
                return 0
            body = bytes(b[5 : 5 + size])
            if b[2] != ord("k") or len(body) < 2:  # noqa: PLR2004 - not a 2D code
                return 5 + size
            if body[:1] == b"1" and body[1] == 80:  # noqa: PLR2004 - store QR data
                self._qr_store = body[3:]
            elif body[:1] == b"1" and body[1] == 81:  # noqa: PLR2004 - print it
                self._current.qr.append(
                    self._qr_store.decode("utf-8", errors="replace")
                )
            return 5 + size
        if cmd == ord("L"):
            return 4 if len(b) >= 4 else 0  # noqa: PLR2004
        if cmd in ONE_ARG_GS:
            return 3
        return 2


class PrinterSimulator:
    """The decoder on a pty, answering status requests."""

    def __init__(self) -> None:
        self.pty: Pty = open_pty()
        self.decoder = EscPosDecoder()
        self.paper_out = False
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The device path the kiosk opens."""
        return self.pty.path

    @property
    def receipts(self) -> list[Receipt]:
        """What was printed so far."""
        with self._lock:
            return list(self.decoder.receipts)

    def run(self, stop: threading.Event) -> None:
        """Serve the line until ``stop``."""
        fd = self.pty.master
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                continue
            with self._lock:
                asked = self.decoder.feed(data)
            for n in asked:
                status = (
                    ONLINE if n == 1 else (PAPER_OUT if self.paper_out else PAPER_OK)
                )
                with contextlib.suppress(OSError):
                    os.write(fd, bytes([status]))

    def close(self) -> None:
        """Close the pty."""
        self.pty.close()
