"""The handheld agent: GNSS fixes → positions, the SOS button → SOS, the inbox.

The imperative shell around :mod:`handheld.reader`, :mod:`handheld.gnss` and
:mod:`handheld.press`. It reads the receiver's byte stream from a serial URL
(never blocking the loop; NMEA mixed with binary is the reader's business),
reports trusted fixes at an adaptive rate, tells a receiver that sends junk
from one that has no fix in its health, raises
an SOS that jumps the outbox queue and is repeated until central answers,
and keeps the officer's inbox (alerts and messages, each acknowledged).
What the officer sees is published in the retained state's ``detail``.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import serial
import uuid_utils
from pydantic import BaseModel

from edge.agent import Agent
from edge.errors import CommandError, HardwareError
from edge.outbox import Entry
from edge.protocol import PayloadError, envelope, topics
from edge.protocol.messages import HandheldConfig, NodeConfig, parse_body, to_body
from edge.protocol.police import (
    AlertArgs,
    DispatchAckBody,
    DispatchArgs,
    LookupBody,
    LookupResultArgs,
    PositionBody,
    SosAckArgs,
    SosBody,
)
from handheld.button import SosButton, open_button
from handheld.gnss import FixLimits, refuse_fix, report_interval
from handheld.press import PressState, on_level
from handheld.reader import GnssReader, Refusal
from handheld.settings import HandheldSettings

if TYPE_CHECKING:
    from edge.bus import Bus
    from edge.clock import Clock
    from edge.outbox import Outbox
    from edge.settings import NodeSettings
    from handheld.epoch import Fix

logger = logging.getLogger(__name__)

SOS_PRIORITY = 9  # ahead of everything else in the outbox
# Positions during an SOS go ahead of an older backlog, but never ahead of
# the SOS itself or its repeats.
SOS_POSITION_PRIORITY = 5
INBOX_SIZE = 50
ENDED = frozenset({"resolved", "false_alarm", "cancelled"})
GNSS_WINDOW_S = 10.0  # nothing readable this long: "gnss_junk"
GNSS_MARK_S = 2.0  # counts are noted this often, for a minute
JUNK_SHARE = 0.2  # more broken sentences than this share: "gnss_junk"


class HandheldAgent(Agent):
    """A police handheld."""

    kind: ClassVar[str] = "handheld"
    config_model: ClassVar[type[NodeConfig]] = HandheldConfig
    settings_model: ClassVar[type[NodeSettings]] = HandheldSettings

    def __init__(
        self,
        *,
        settings: NodeSettings,
        bus: Bus,
        outbox: Outbox,
        clock: Clock,
        button: SosButton | None = None,
    ) -> None:
        super().__init__(settings=settings, bus=bus, outbox=outbox, clock=clock)
        self.hh = (
            settings
            if isinstance(settings, HandheldSettings)
            else HandheldSettings.model_validate(settings.model_dump())
        )
        self.button = button or open_button(self.hh.sos_button)
        self.commands.update(
            alert=self._on_alert,
            dispatch=self._on_dispatch,
            sos_ack=self._on_sos_ack,
            lookup_result=self._on_lookup_result,
        )
        self._port: serial.SerialBase | None = None
        self._port_retry = 0.0
        self.gnss = GnssReader()
        # (monotonic, well-formed sentences, broken ones) every GNSS_MARK_S
        self._gnss_marks: deque[tuple[float, int, int]] = deque(maxlen=31)
        self.last_fix: Fix | None = None
        self._last_fix_mono: float | None = None
        self._last_bytes_mono = clock.monotonic()
        self._next_report = 0.0
        self.fix_rejected: Counter[str] = Counter()
        self._press = PressState()
        self.sos: dict[str, Any] | None = None
        self._sos_retry = 0.0
        self.inbox: list[dict[str, Any]] = []
        self.lookups: dict[str, dict[str, Any]] = {}

    @property
    def cfg(self) -> HandheldConfig:
        """The configuration in force, typed."""
        assert isinstance(self.config, HandheldConfig)  # noqa: S101 - config_model
        return self.config

    @property
    def sos_active(self) -> bool:
        """Whether an SOS is raised and not yet ended."""
        return self.sos is not None and self.sos["phase"] not in ENDED

    def update_deferral(self) -> str | None:
        """A handheld never updates during an SOS."""
        return "an SOS is in progress" if self.sos_active else None

    # -- the loop ------------------------------------------------------------
    def step(self) -> None:
        """Read the receiver and the button; repeat an unanswered SOS."""
        self._read_gnss()
        self._read_button()
        now = self.clock.monotonic()
        sos = self.sos
        if (
            sos is not None
            and sos["phase"] == "raised"
            and not sos["answered"]
            and self.bus.connected
            and now >= self._sos_retry
        ):
            sos["attempt"] += 1
            self._emit_sos("raised")
        if self.last_fix is not None and now >= self._next_report:
            self._report(self.last_fix)

    @property
    def nmea_rejected(self) -> Counter[str]:
        """What the reader refused, by reason (junk and ``no_fix``)."""
        return self.gnss.refused

    def faults(self) -> set[str]:
        """GNSS port, silence, junk from the receiver and lost fix.

        ``gnss_junk`` (the receiver or the line is faulty: wrong baud rate,
        broken checksums, binary-only output) is told apart from
        ``gnss_no_fix`` (the receiver is fine but has no position).
        """
        out: set[str] = set()
        now = self.clock.monotonic()
        if self._port is None:
            out.add("gnss_port")
        elif now - self._last_bytes_mono > 10:  # noqa: PLR2004
            out.add("gnss_silent")
        elif self._receiver_sends_junk():
            out.add("gnss_junk")
        if self._last_fix_mono is None or now - self._last_fix_mono > 60:  # noqa: PLR2004
            out.add("gnss_no_fix")
        return out

    def _receiver_sends_junk(self) -> bool:
        """Over the last minute: nothing readable, or too much of it broken."""
        self._mark_gnss()
        now = self.clock.monotonic()
        old = [m for m in self._gnss_marks if now - m[0] >= GNSS_WINDOW_S]
        if not old:
            return False  # too soon to judge
        if self.gnss.good == old[-1][1]:
            return True  # bytes for ten seconds and not one sentence in them
        good = self.gnss.good - old[0][1]
        junk = self.gnss.junk - old[0][2]
        return junk > JUNK_SHARE * (good + junk)

    def _mark_gnss(self) -> None:
        now = self.clock.monotonic()
        if not self._gnss_marks or now - self._gnss_marks[-1][0] >= GNSS_MARK_S:
            self._gnss_marks.append((now, self.gnss.good, self.gnss.junk))

    def _open_port(self) -> serial.SerialBase | None:
        now = self.clock.monotonic()
        if self._port is None and now >= self._port_retry:
            try:
                self._port = serial.serial_for_url(
                    self.hh.gnss_url, baudrate=self.hh.gnss_baud, timeout=0
                )
                logger.info("GNSS receiver open on %s", self.hh.gnss_url)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._port_retry = now + 5.0
                logger.warning("Cannot open GNSS %s: %s", self.hh.gnss_url, exc)
        return self._port

    def _read_gnss(self) -> None:
        port = self._open_port()
        if port is None:
            return
        try:
            data = port.read(4096)
        except (serial.SerialException, OSError) as exc:
            logger.warning("GNSS read failed, reopening: %s", exc)
            port.close()
            self._port = None
            return
        if not data:
            return
        self._last_bytes_mono = self.clock.monotonic()
        self.feed_bytes(data)

    def feed_bytes(self, data: bytes) -> None:
        """Take bytes from the receiver (whatever they are: nothing raises)."""
        self._mark_gnss()
        for item in self.gnss.feed(data, now=self.clock.now()):
            if isinstance(item, Refusal):
                logger.debug("GNSS refused (%s): %s", item.reason, item.detail)
            else:
                self._take_fix(item)

    def feed_line(self, line: str) -> None:
        """Take one line of NMEA text, as if the receiver had sent it."""
        self.feed_bytes((line + "\r\n").encode("ascii", errors="replace"))

    def _take_fix(self, fix: Fix) -> None:
        limits = FixLimits(
            max_hdop=self.cfg.max_hdop,
            stale_s=self.cfg.stale_s,
            max_speed_mps=self.cfg.max_speed_mps,
        )
        reason = refuse_fix(fix, self.last_fix, now=self.clock.now(), limits=limits)
        if reason is not None:
            self.fix_rejected[reason] += 1
            return
        self.last_fix = fix
        self._last_fix_mono = self.clock.monotonic()

    def _report(self, fix: Fix) -> None:
        body = PositionBody(
            lat=fix.lat,
            lon=fix.lon,
            fix_ts=fix.time,
            speed_mps=min(fix.speed_mps, 200.0),
            course=fix.course if fix.course is not None and fix.course < 360 else None,  # noqa: PLR2004
            hdop=fix.hdop,
            sats=fix.sats,
            sos=self.sos_active,
        )
        self.emit(
            "position",
            to_body(body),
            priority=SOS_POSITION_PRIORITY if self.sos_active else 0,
        )
        self._next_report = self.clock.monotonic() + report_interval(
            fix.speed_mps,
            sos=self.sos_active,
            standing_s=self.cfg.report_standing_s,
            moving_s=self.cfg.report_moving_s,
            sos_s=self.cfg.report_sos_s,
            moving_mps=self.cfg.moving_mps,
        )

    # -- SOS -----------------------------------------------------------------
    def _read_button(self) -> None:
        try:
            level = self.button.pressed()
        except (HardwareError, OSError) as exc:
            logger.warning("SOS button unreadable: %s", exc)
            return
        self._press, action = on_level(
            self._press,
            pressed=level,
            now=self.clock.monotonic(),
            hold_s=self.cfg.sos_hold_s,
            cancel_s=self.cfg.sos_cancel_s,
        )
        if action == "raise":
            self.raise_sos()
        elif action == "cancel" and self.sos_active:
            self.cancel_sos()

    def raise_sos(self) -> str:
        """Raise an SOS now (the long press ends here); return its id."""
        self.sos = {
            "sos_id": str(uuid_utils.uuid7()),
            "phase": "raised",
            "pressed_at": self.clock.now(),
            "attempt": 1,
            "answered": False,
            "responders": [],
            "text": "求救已发出",
        }
        logger.warning("SOS raised: %s", self.sos["sos_id"])
        self._emit_sos("raised")
        self._next_report = 0.0  # report the position now, then every second
        return str(self.sos["sos_id"])

    def cancel_sos(self) -> None:
        """The officer cancels the SOS (a press within the cancel window)."""
        if self.sos is None:
            return
        self.sos["phase"] = "cancelled"
        self.sos["text"] = "求救已取消"
        logger.warning("SOS cancelled: %s", self.sos["sos_id"])
        self._emit_sos("cancelled")

    def _emit_sos(self, phase: str) -> None:
        sos = self.sos
        assert sos is not None  # noqa: S101 - only called with an SOS
        fix = self.last_fix
        body = SosBody(
            sos_id=sos["sos_id"],
            phase=phase,  # type: ignore[arg-type]
            pressed_at=sos["pressed_at"],
            lat=fix.lat if fix else None,
            lon=fix.lon if fix else None,
            attempt=sos["attempt"],
        )
        self._emit_on_sos_lane(to_body(body))
        self._pump()  # now, not on the next turn of the loop
        self._sos_retry = self.clock.monotonic() + self.cfg.sos_retry_s
        if self.bus.connected:
            self.publish_state()

    def _emit_on_sos_lane(self, body: dict[str, Any]) -> str:
        """Put an SOS in the outbox, first in line, for its own topic.

        Like :meth:`emit` (the outbox keeps it across a lost link and a
        restart; the same event id on every resend), but published on
        :func:`topics.sos` — central's SOS lane, where no position waits
        before it — instead of ``event/sos``.
        """
        env = envelope.make(self.settings.device_id, "sos", body, now=self.clock.now())
        self._store(
            [
                Entry(
                    topic=topics.sos(self.settings.device_id),
                    payload=envelope.encode(env),
                    priority=SOS_PRIORITY,
                )
            ]
        )
        return str(env.id)

    def _on_sos_ack(self, args: dict[str, Any]) -> dict[str, Any]:
        ack = _parse(SosAckArgs, args)
        sos = self.sos
        if sos is None or sos["sos_id"] != ack.sos_id:
            raise CommandError(f"expected the SOS in progress, got {ack.sos_id!r}")
        if sos["phase"] != "cancelled" or ack.phase in ENDED:
            sos["phase"] = ack.phase
        sos["answered"] = True
        sos["responders"] = ack.responders
        sos["text"] = ack.text
        self.publish_state()
        return {"phase": sos["phase"]}

    # -- inbox and look-ups ----------------------------------------------------
    def _on_alert(self, args: dict[str, Any]) -> dict[str, Any]:
        alert = _parse(AlertArgs, args)
        self._to_inbox(alert.alert_id, alert.kind, alert.text, extra=to_body(alert))
        return {"received": alert.alert_id}

    def _on_dispatch(self, args: dict[str, Any]) -> dict[str, Any]:
        msg = _parse(DispatchArgs, args)
        self._to_inbox(msg.message_id, "message", msg.text, extra=to_body(msg))
        return {"received": msg.message_id}

    def _to_inbox(
        self, item_id: str, kind: str, text: str, *, extra: dict[str, Any]
    ) -> None:
        if any(i["id"] == item_id for i in self.inbox):
            return  # a repeat (alarms repeat until acknowledged)
        self.inbox.append(
            {"id": item_id, "kind": kind, "text": text, "acked": False, **extra}
        )
        del self.inbox[:-INBOX_SIZE]
        self._ack(item_id, "received")
        self.publish_state()

    def acknowledge(self, item_id: str) -> None:
        """The officer acknowledges a message or an alert.

        Raises:
            CommandError: nothing with that id is in the inbox.
        """
        for item in self.inbox:
            if item["id"] == item_id:
                item["acked"] = True
                self._ack(item_id, "acknowledged")
                self.publish_state()
                return
        raise CommandError(f"expected an inbox item id, got {item_id!r}")

    def _ack(self, item_id: str, action: str) -> None:
        body = DispatchAckBody(
            message_id=item_id,
            action=action,  # type: ignore[arg-type]
            at=self.clock.now(),
        )
        self.emit("dispatch_ack", to_body(body), priority=1)

    def lookup(self, what: str, query: str, reason: str) -> str:
        """Ask central about a person or a vehicle; return the query's id."""
        body = LookupBody(
            query_id=str(uuid_utils.uuid7()),
            what=what,  # type: ignore[arg-type]
            query=query,
            reason=reason,
        )
        self.emit("lookup", to_body(body), priority=1)
        self.lookups[body.query_id] = {"pending": True}
        return body.query_id

    def _on_lookup_result(self, args: dict[str, Any]) -> dict[str, Any]:
        result = _parse(LookupResultArgs, args)
        self.lookups[result.query_id] = to_body(result)
        return {"received": result.query_id}

    # -- what the officer sees -------------------------------------------------
    def publish_state(self, *, online: bool = True) -> None:
        """Publish retained state with the handheld's screen in ``detail``."""
        self.state_detail = self.screen()
        super().publish_state(online=online)

    def screen(self) -> dict[str, Any]:
        """What the handheld shows: SOS status, the inbox, the last fix."""
        sos = None
        if self.sos is not None:
            sos = {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in self.sos.items()
            }
        fix = self.last_fix
        return {
            "sos": sos,
            "unread": sum(1 for i in self.inbox if not i["acked"]),
            "inbox": [
                {
                    "id": i["id"],
                    "kind": i["kind"],
                    "text": i["text"],
                    "acked": i["acked"],
                }
                for i in self.inbox[-10:]
            ],
            "fix": None
            if fix is None
            else {"lat": fix.lat, "lon": fix.lon, "at": fix.time.isoformat()},
            "gnss_rejected": dict(self.nmea_rejected + self.fix_rejected),
            "gnss": {
                "junk": {r: n for r, n in self.gnss.refused.items() if r != "no_fix"},
                "no_fix": self.gnss.refused["no_fix"],
                "untrusted": dict(self.fix_rejected),
                "fixes": self.gnss.fixes,
            },
        }

    def _shutdown(self) -> None:
        super()._shutdown()
        if self._port is not None:
            self._port.close()
        self.button.close()


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], args: dict[str, Any]) -> M:
    try:
        return parse_body(model, args)
    except PayloadError as exc:
        raise CommandError(str(exc)) from exc
