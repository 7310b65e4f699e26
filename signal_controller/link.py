"""The cabinet's line to its controller: TCP or a serial port, frames both ways.

A reader thread turns bytes into frames (:class:`FrameReader`, which skips
noise) and queues them for the agent's loop; :meth:`ControllerLink.send`
writes a frame with the next sequence number. A broken line is reopened
with edge's back-off; the agent sees it as a silent controller.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from typing import Any

from edge.bus import Backoff
from signal_controller.gbt20999 import Frame, FrameReader, FrameType, Value, encode

logger = logging.getLogger(__name__)

CABINET_ID = 1
CONTROLLER_ID = 0x2001


class ControllerLink:
    """Frames to and from the controller at ``url`` (tcp:HOST:PORT or serial)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames: queue.Queue[Frame] = queue.Queue()
        self.reader = FrameReader()
        self._io: Any = None
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _open(self) -> Any:  # noqa: ANN401 - a socket or a pyserial port
        if self.url.startswith("tcp:"):
            _, host, port = self.url.split(":")
            sock = socket.create_connection((host, int(port)), timeout=2)
            sock.settimeout(0.2)
            return sock
        import serial  # noqa: PLC0415 - only cabinets on a serial line need it

        return serial.serial_for_url(self.url, baudrate=9600, timeout=0.2)

    def start(self) -> None:
        """Open the line (and keep it open) in the reader thread."""
        self._thread = threading.Thread(
            target=self._run, daemon=True, name="controller"
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self._close()

    def _close(self) -> None:
        io, self._io = self._io, None
        if io is not None:
            with contextlib.suppress(OSError):
                io.close()

    def _run(self) -> None:
        # The node's one back-off (edge's, jittered): a cabinet's line comes
        # back within 5 s of its controller, as the broker link does.
        backoff = Backoff(initial=0.2, cap=5.0)
        while not self._stop.is_set():
            try:
                self._io = self._open()
            except (OSError, ValueError) as exc:
                logger.warning("Controller line %s not open: %s", self.url, exc)
                self._stop.wait(backoff.next())
                continue
            backoff.reset()
            self._read()
            self._close()

    def _read(self) -> None:
        io = self._io
        while not self._stop.is_set() and io is not None:
            try:
                chunk = io.recv(4096) if isinstance(io, socket.socket) else io.read(256)
            except TimeoutError:
                continue
            except OSError as exc:
                logger.warning("Controller line broke: %s", exc)
                return
            if isinstance(io, socket.socket) and chunk == b"":
                logger.warning("Controller closed the line")
                return
            for frame in self.reader.feed(chunk):
                self.frames.put(frame)

    def send(self, ftype: FrameType, values: tuple[Value, ...] = ()) -> int | None:
        """Write a frame; return its sequence number (None if the line is down)."""
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFF
            seq = self._seq
            frame = Frame(ftype, CABINET_ID, CONTROLLER_ID, seq, values)
            io = self._io
            if io is None:
                return None
            try:
                if isinstance(io, socket.socket):
                    io.sendall(encode(frame))
                else:
                    io.write(encode(frame))
            except OSError as exc:
                logger.warning("Cannot write to the controller: %s", exc)
                return None
        return seq
