"""The detector node: a Modbus RTU card in, lane counts and faults out.

Every ``poll_s`` it reads the card's input registers in one request
(:mod:`loop_detector.registers`), turns the counter differences into
1-minute and 15-minute bins (``detector`` and ``detector_15m`` events, all
lanes in one event) and watches each lane for stuck-on, stuck-off and
chattering (``fault`` events, raised and cleared). All of it goes through
the outbox, so a link down for an hour loses nothing. A card that does not
answer is a fault of its own, and its counters are simply read again when
it returns (they are cumulative).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException

from edge.agent import Agent
from loop_detector.registers import READ_COUNT, CardReading, parse
from loop_detector.settings import DetectorSettings
from loop_detector.traffic import Binner, Diagnoser

if TYPE_CHECKING:
    from edge.bus import Bus
    from edge.clock import Clock
    from edge.outbox import Outbox

logger = logging.getLogger(__name__)


class DetectorAgent(Agent):
    """One detector card (up to 8 lanes)."""

    kind = "loop_detector"
    settings_model = DetectorSettings

    def __init__(
        self, *, settings: DetectorSettings, bus: Bus, outbox: Outbox, clock: Clock
    ) -> None:
        super().__init__(settings=settings, bus=bus, outbox=outbox, clock=clock)
        self.ds = settings
        self.client = ModbusSerialClient(
            settings.modbus_url, baudrate=settings.baudrate, timeout=1, retries=1
        )
        self.binner = Binner()
        self.diagnoser = Diagnoser(
            stuck_on_s=settings.stuck_on_s, stuck_off_s=settings.stuck_off_s
        )
        self.last: CardReading | None = None
        self.last_t = 0.0
        self.card_ok = False
        self.polls = 0
        self._next_poll = 0.0

    def _registers(self) -> list[int]:
        if not self.client.connected and not self.client.connect():
            raise ModbusException(f"cannot open {self.ds.modbus_url}")
        answer = self.client.read_input_registers(
            0, count=READ_COUNT, device_id=self.ds.unit
        )
        if answer.isError():
            raise ModbusException(str(answer))
        return list(answer.registers)

    def read(self) -> CardReading | None:
        """One poll of the card (None, and a fault, when it does not answer)."""
        try:
            reading = parse(self._registers())
        except (ModbusException, ValueError, OSError) as exc:
            if self.card_ok:
                logger.warning("Detector card not answering: %s", exc)
            self.card_ok = False
            return None
        self.card_ok = True
        return reading

    def step(self) -> None:
        """Poll on time; emit finished bins and fault changes."""
        t = self.clock.monotonic()
        if t < self._next_poll:
            return
        self._next_poll = t + self.ds.poll_s
        reading = self.read()
        if reading is None:
            return
        self.polls += 1
        if self.last is not None and len(reading.lanes) == len(self.last.lanes):
            items: list[tuple[str, dict[str, Any]]] = self.binner.add(
                self.last, reading, self.clock.now()
            )
            items += [
                (
                    "fault",
                    {
                        "code": f["code"],
                        "active": f["active"],
                        "detail": f"lane {f['lane']}",
                    },
                )
                for f in self.diagnoser.check(self.last, reading, t, t - self.last_t)
            ]
            if items:
                self.emit_many(items)
        self.last, self.last_t = reading, t
        self.state_detail = {
            "lanes": len(reading.lanes),
            "presence": [lane.presence for lane in reading.lanes],
        }

    def faults(self) -> set[str]:
        """Card silent, card fault bit, lanes with an active diagnosis."""
        out = {f"{code}_lane{lane}" for code, lane in self.diagnoser.active}
        if not self.card_ok:
            out.add("card_silent")
        if self.last is not None and self.last.status & 1:
            out.add("card_fault")
        return out

    def _shutdown(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
        super()._shutdown()
