"""The detector node: a Modbus RTU card in, lane counts and faults out.

Every ``poll_s`` it reads the card's input registers in one request
(:mod:`loop_detector.registers`), turns the counter differences into
1-minute and 15-minute bins (``detector`` and ``detector_15m`` events, all
lanes in one event) and watches each lane for stuck-on, stuck-off and
chattering (``fault`` events, raised and cleared). All of it goes through
the outbox, so a link down for an hour loses nothing. A card that does not
answer is a fault of its own, and its counters are simply read again when
it returns (they are cumulative). The fault says which way it failed:
``card_silent`` (no answer within ``timeout_s``: dead, unplugged, wrong
unit id or framing), ``card_refused`` (a Modbus exception response, with
its code in the log) or ``card_bad_data`` (an answer that breaks the
register map).

The serial line is opened with the settings' framing (baud, parity, stop
bits, byte size) and unit id; Modbus RTU framing itself is pymodbus's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse

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
            settings.modbus_url,
            baudrate=settings.baudrate,
            parity=settings.parity,
            stopbits=settings.stopbits,
            bytesize=settings.bytesize,
            timeout=settings.timeout_s,
            retries=1,
        )
        self.binner = Binner()
        self.diagnoser = Diagnoser(
            stuck_on_s=settings.stuck_on_s, stuck_off_s=settings.stuck_off_s
        )
        self.last: CardReading | None = None
        self.last_t = 0.0
        self.card_state = "silent"  # ok, silent, refused or bad_data
        self.polls = 0
        self._next_poll = 0.0

    @property
    def card_ok(self) -> bool:
        """Whether the last poll read the card."""
        return self.card_state == "ok"

    def _registers(self) -> list[int] | str:
        """The input registers, or why there are none (``card_state``)."""
        if not self.client.connected and not self.client.connect():
            logger.debug("Cannot open %s", self.ds.modbus_url)
            return "silent"
        try:
            answer = self.client.read_input_registers(
                0, count=READ_COUNT, device_id=self.ds.unit
            )
        except ModbusIOException as exc:
            logger.debug("No answer from unit %s: %s", self.ds.unit, exc)
            return "silent"
        except (ModbusException, OSError) as exc:
            logger.debug("Line error to unit %s: %s", self.ds.unit, exc)
            return "silent"
        if isinstance(answer, ExceptionResponse):
            logger.debug("Unit %s refused: %s", self.ds.unit, answer)
            return f"refused:{answer.exception_code:02x}"
        if answer.isError() or len(answer.registers) != READ_COUNT:
            return "bad_data"
        return list(answer.registers)

    def read(self) -> CardReading | None:
        """One poll of the card (None, and a fault, when it does not answer)."""
        words = self._registers()
        reading: CardReading | None = None
        if isinstance(words, str):
            state = words.split(":", 1)[0]
        else:
            try:
                reading = parse(words)
                state = "ok"
            except ValueError as exc:
                logger.debug("Unit %s sent a bad register image: %s", self.ds.unit, exc)
                state = "bad_data"
        if state != self.card_state:
            if state == "ok":
                logger.info("Detector card unit %s answering", self.ds.unit)
            else:
                logger.warning(
                    "Detector card unit %s at %s (%s): %s",
                    self.ds.unit,
                    self.ds.modbus_url,
                    self.ds.framing,
                    words if isinstance(words, str) else state,
                )
        self.card_state = state
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
        """Card silent/refused/bad data, card fault bit, lanes with a diagnosis."""
        out = {f"{code}_lane{lane}" for code, lane in self.diagnoser.active}
        if not self.card_ok:
            out.add(f"card_{self.card_state}")
        if self.last is not None and self.last.status & 1:
            out.add("card_fault")
        return out

    def _shutdown(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
        super()._shutdown()
