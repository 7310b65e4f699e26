"""A detector card on a serial line: a Modbus RTU slave (pymodbus) on a pty.

The card keeps the registers of :mod:`loop_detector.registers` — counts and
occupied time per lane, presence, speed — and a traffic source moves them:
:meth:`DetectorCard.vehicle` for one vehicle (a test, or SUMO's induction
loops in the closed loop), :meth:`DetectorCard.poisson` for steady traffic,
and faults on demand (a lane stuck on, a lane chattering, a dead card).

pymodbus's serial server needs a device path, and so does the node's
client; :class:`PtyPair` joins two pseudo-terminals back to back (what
``socat pty pty`` does), so each side opens a real tty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import random
import select
import threading
import tty
from dataclasses import dataclass

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from loop_detector.registers import LANE_BASE, READ_COUNT


class PtyPair:
    """Two ptys joined back to back; ``a`` and ``b`` are their device paths."""

    def __init__(self) -> None:
        self._fds = []
        paths = []
        for _ in range(2):
            master, slave = pty.openpty()
            tty.setraw(slave)
            paths.append(os.ttyname(slave))
            self._fds.append((master, slave))
        self.a, self.b = paths
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True, name="ptypair")
        self._thread.start()

    def _pump(self) -> None:
        (ma, _), (mb, _) = self._fds
        other = {ma: mb, mb: ma}
        while not self._stop.is_set():
            ready, _, _ = select.select([ma, mb], [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                with contextlib.suppress(OSError):
                    os.write(other[fd], data)

    def close(self) -> None:
        """Stop the pump and close both ptys."""
        self._stop.set()
        self._thread.join(timeout=2)
        for master, slave in self._fds:
            for fd in (master, slave):
                with contextlib.suppress(OSError):
                    os.close(fd)


@dataclass
class Lane:
    """One lane's counters."""

    count: int = 0
    occupied_ms: int = 0
    presence: bool = False
    speed_dkmh: int = 0
    sensor: int = 1
    fault_bits: int = 0


class DetectorCard:
    """The card's registers, served over Modbus RTU on ``self.path``."""

    def __init__(self, lanes: int = 4, *, sensor: str = "loop") -> None:
        self.lanes = [
            Lane(sensor=2 if sensor == "microwave" else 1) for _ in range(lanes)
        ]
        self.status = 0
        self.answering = True
        self.device = SimDevice(
            id=1,
            simdata=[SimData(0, values=[0] * READ_COUNT, datatype=DataType.REGISTERS)],
            action=self._on_access,
        )
        self.ptys = PtyPair()
        self.path = self.ptys.b  # the node opens this side
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusSerialServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- traffic ----------------------------------------------------------------------
    def vehicle(
        self, lane: int, *, speed_kmh: float = 40.0, over_s: float = 0.4
    ) -> None:
        """One vehicle over lane ``lane`` (from 1)."""
        with self._lock:
            ln = self.lanes[lane - 1]
            ln.count = (ln.count + 1) % (1 << 32)
            ln.occupied_ms = (ln.occupied_ms + round(over_s * 1000)) % (1 << 32)
            if ln.sensor == 2:  # noqa: PLR2004 - microwave radars measure speed
                ln.speed_dkmh = round(speed_kmh * 10)

    def set_presence(self, lane: int, *, present: bool) -> None:
        """A vehicle standing on the loop (or a loop stuck on)."""
        with self._lock:
            self.lanes[lane - 1].presence = present

    def poisson(
        self, flows_vph: list[float], stop: threading.Event, *, seed: int = 1
    ) -> None:
        """Steady random traffic at ``flows_vph`` per lane until ``stop``."""
        rng = random.Random(seed)  # noqa: S311 - simulation
        while not stop.wait(0.1):
            for lane, q in enumerate(flows_vph, start=1):
                if rng.random() < q / 3600 * 0.1:
                    self.vehicle(lane, speed_kmh=rng.uniform(25, 55))

    # -- registers -----------------------------------------------------------
    def registers(self) -> list[int]:
        """The register image (see the map in loop_detector.registers)."""
        words = [0] * READ_COUNT
        words[0], words[1], words[2] = self.status, len(self.lanes), 0x0102
        for n, ln in enumerate(self.lanes, start=1):
            base = LANE_BASE * n
            words[base : base + 8] = [
                ln.count >> 16,
                ln.count & 0xFFFF,
                ln.occupied_ms >> 16,
                ln.occupied_ms & 0xFFFF,
                int(ln.presence),
                ln.speed_dkmh,
                ln.sensor,
                ln.fault_bits,
            ]
        return words

    async def _on_access(  # noqa: PLR0917 - pymodbus's action signature
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Each read sees the card as it is now (or no answer from a dead card)."""
        del function_code, address, count, set_values
        if not self.answering:
            return ExcCodes.DEVICE_FAILURE
        with self._lock:
            image = self.registers()
        for i in range(len(current)):
            at = start_address + i
            current[i] = image[at] if at < len(image) else 0
        return None

    # -- the serial server -----------------------------------------------------------
    def start(self) -> None:
        """Serve Modbus RTU on the pty in a thread of its own."""
        ready = threading.Event()

        async def serve() -> None:
            self._server = ModbusSerialServer(
                self.device, framer=FramerType.RTU, port=self.ptys.a, baudrate=115_200
            )
            self._loop = asyncio.get_running_loop()
            ready.set()
            await self._server.serve_forever()

        self._thread = threading.Thread(
            target=lambda: asyncio.run(serve()), daemon=True, name="modbus-card"
        )
        self._thread.start()
        ready.wait(5)

    def stop(self) -> None:
        """Stop serving and close the ptys."""
        if self._loop is not None and self._server is not None:
            closing = self._server.shutdown()  # type: ignore[no-untyped-call]
            fut = asyncio.run_coroutine_threadsafe(closing, self._loop)
            with contextlib.suppress(Exception):
                fut.result(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.ptys.close()
