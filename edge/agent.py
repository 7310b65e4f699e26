"""The agent every node kind builds on: the imperative shell around the link.

It owns the loop that takes bus events off the queue, pumps the outbox into
the link with a bounded in-flight window, answers commands (MQTT 5 response
topic and correlation data), applies the desired configuration central
writes, and publishes retained state (online, version, health) on every
heartbeat. A kind subclasses :class:`Agent`, sets ``kind`` and ``config_model``,
and overrides :meth:`Agent.step`, :meth:`Agent.apply_config` and
:meth:`Agent.faults`. Device I/O belongs to the subclass.
"""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from edge.bus import Bus, BusEvent, LinkDown, LinkUp, Published, Received, Will
from edge.errors import BusError, CommandError, OutboxFullError
from edge.ota.client import RESTART, OtaClient
from edge.outbox import Entry, Outbox
from edge.protocol import envelope, topics
from edge.protocol.errors import PayloadError
from edge.protocol.messages import (
    ConfigBody,
    ConfigReport,
    Health,
    NodeConfig,
    ReplyBody,
    StateBody,
    parse_body,
    to_body,
    validate_config,
)
from edge.protocol.signing import CommandAuthError, verify_command
from edge.settings import NodeSettings
from edge.trust import TrustStore

if TYPE_CHECKING:
    import threading

    from edge.clock import Clock

logger = logging.getLogger(__name__)

CommandHandler = Callable[[dict[str, Any]], dict[str, Any]]


def offline_will(device_id: str, kind: str, version: str, *, clock: Clock) -> Will:
    """The last will: retained state saying the node is offline."""
    body = StateBody(online=False, kind=kind, version=version)  # type: ignore[arg-type]
    env = envelope.make(device_id, "state", to_body(body), now=clock.now())
    return Will(topic=topics.state(device_id), payload=envelope.encode(env))


class Agent:
    """Shared node runtime; subclasses add their device and events."""

    kind: ClassVar[str] = "sim"
    config_model: ClassVar[type[NodeConfig]] = NodeConfig
    settings_model: ClassVar[type[NodeSettings]] = NodeSettings
    # Commands accepted only when signed, whatever the settings say.
    signed_commands: ClassVar[frozenset[str]] = frozenset({"trust_key"})

    def __init__(
        self, *, settings: NodeSettings, bus: Bus, outbox: Outbox, clock: Clock
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.outbox = outbox
        self.clock = clock
        self.config: NodeConfig = self.config_model()
        self.config_report = ConfigReport()
        self.trust = TrustStore(
            settings.data_dir / "trust.sqlite3", initial_keys=settings.command_keys
        )
        self.commands: dict[str, CommandHandler] = {
            "ping": lambda _args: {"pong": True},
            "health": lambda _args: to_body(self.health()),
            "trust_key": self._trust_key,
        }
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._started = clock.monotonic()
        self._next_heartbeat = 0.0
        self._extra_faults: set[str] = set()
        self.state_detail: dict[str, Any] = {}  # what the node shows, in its state
        self.rejected = 0
        self.ota = OtaClient(  # after the outbox: it may report at once
            settings, clock=clock, emit=lambda body: self.emit("ota", body)
        )
        self.commands["ota"] = self.ota.command

    # -- what subclasses override ------------------------------------------
    def step(self) -> None:
        """Do one slice of the node's own work (read devices, emit events)."""

    def apply_config(self, config: NodeConfig) -> None:
        """Take a validated configuration into use.

        Raises:
            CommandError: the device cannot honour it (the refusal is reported).
        """
        del config

    def faults(self) -> set[str]:
        """Return the codes of the node's active faults."""
        return set()

    def update_deferral(self) -> str | None:
        """Why an update must wait now (a citizen at the kiosk, an SOS), or None."""
        return None

    def ota_health(self) -> str | None:
        """Why this node is not healthy enough to keep a new release, or None.

        The check every kind shares: the link is up and no fault is active
        (kinds raise faults for hardware that does not answer); that the
        main loop runs is shown by this being called from it. A kind may
        add its own conditions.
        """
        if not self.bus.connected:
            return "no link to the broker"
        faults = sorted(self.faults() | self._extra_faults)
        return f"faults: {', '.join(faults)}" if faults else None

    @property
    def exit_code(self) -> int:
        """0, or :data:`RESTART` when an update asks to start again."""
        return RESTART if self.ota.restart else 0

    def observe(self, topic: topics.Topic, env: envelope.Envelope) -> None:
        """Take a message from another node this one follows.

        A camera at a junction, for one, follows the cabinet's retained state.
        """
        del topic, env

    # -- producing ---------------------------------------------------------
    def emit(self, type_: str, body: dict[str, Any], *, priority: int = 0) -> str:
        """Write an event to the outbox; it is sent when the link allows.

        Raises:
            OutboxFullError: the disk budget is full of events (a fault is
                raised on the node's state as well).

        Returns:
            The event's id.
        """
        env = envelope.make(self.settings.device_id, type_, body, now=self.clock.now())
        self._store(
            [
                Entry(
                    topic=topics.event(self.settings.device_id, type_),
                    payload=envelope.encode(env),
                    priority=priority,
                )
            ]
        )
        return str(env.id)

    def emit_many(
        self,
        items: list[tuple[str, dict[str, Any]]],
        *,
        cursor: tuple[str, str] | None = None,
    ) -> list[str]:
        """Write several events in one transaction (same rules as :meth:`emit`).

        ``cursor`` is saved with them atomically (see :meth:`Outbox.put`).
        """
        now = self.clock.now()
        envs = [envelope.make(self.settings.device_id, t, b, now=now) for t, b in items]
        self._store(
            [
                Entry(topic=topics.event(e.device, e.type), payload=envelope.encode(e))
                for e in envs
            ],
            cursor=cursor,
        )
        return [str(e.id) for e in envs]

    def send_telemetry(self, body: dict[str, Any]) -> None:
        """Queue a measurement; under disk pressure telemetry goes first."""
        env = envelope.make(
            self.settings.device_id, "telemetry", body, now=self.clock.now()
        )
        self._store(
            [
                Entry(
                    topic=topics.telemetry(self.settings.device_id),
                    payload=envelope.encode(env),
                    kind="telemetry",
                )
            ]
        )

    def _store(
        self, entries: list[Entry], cursor: tuple[str, str] | None = None
    ) -> None:
        try:
            self.outbox.put(entries, cursor=cursor)
        except OutboxFullError:
            if "outbox_full" not in self._extra_faults:
                logger.exception("Outbox full of events; raising fault outbox_full")
                self._extra_faults.add("outbox_full")
                self.publish_state()
            raise
        self._extra_faults.discard("outbox_full")

    # -- state ---------------------------------------------------------------
    def health(self) -> Health:
        """Summarise the node's health."""
        faults = sorted(self.faults() | self._extra_faults)
        if self.outbox.dead():
            faults.append("outbox_refused")
        return Health(
            status="fault" if faults else "ok",
            faults=faults,
            outbox_depth=self.outbox.depth,
            outbox_bytes=self.outbox.bytes,
            uptime_s=round(self.clock.monotonic() - self._started, 1),
        )

    def publish_state(self, *, online: bool = True) -> None:
        """Publish retained state now."""
        body = StateBody(
            online=online,
            kind=self.kind,  # type: ignore[arg-type]
            version=self.settings.version,
            health=self.health(),
            config=self.config_report,
            detail=self.state_detail,
        )
        env = envelope.make(
            self.settings.device_id, "state", to_body(body), now=self.clock.now()
        )
        self.bus.publish(
            topics.state(self.settings.device_id),
            envelope.encode(env),
            qos=1,
            retain=True,
        )

    # -- the loop --------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set, then go offline cleanly."""
        self.bus.start()
        try:
            while not stop.is_set() and not self.ota.restart:
                self.tick(timeout=0.05)
        finally:
            self._shutdown()

    def tick(self, timeout: float = 0.0) -> None:
        """Handle what arrived, pump the outbox, heartbeat, and step once."""
        self._drain(timeout)
        self._pump()
        now = self.clock.monotonic()
        if now >= self._next_heartbeat and self.bus.connected:
            self._next_heartbeat = now + min(
                self.config.heartbeat_s, self.settings.heartbeat_s
            )
            self.publish_state()
        # full: the fault is raised; the kind produces again once there is room
        with contextlib.suppress(OutboxFullError):
            self.step()
        self.ota.step(deferral=self.update_deferral, health=self.ota_health)

    def _drain(self, timeout: float) -> None:
        try:
            event: BusEvent = self.bus.inbox.get(timeout=timeout)
        except queue.Empty:
            return
        acked: list[int] = []
        while True:
            self._handle(event, acked)
            try:
                event = self.bus.inbox.get_nowait()
            except queue.Empty:
                break
        self.outbox.ack(acked)  # one transaction (one fsync) for the whole drain

    def _handle(self, event: BusEvent, acked: list[int]) -> None:
        if isinstance(event, Published):
            seq = self._inflight.pop(event.mid, None)
            if seq is None:
                return
            if event.ok:
                acked.append(seq)
            else:
                logger.error("Broker refused outbox entry %d: %s", seq, event.reason)
                self.outbox.bury(seq, event.reason)
        elif isinstance(event, LinkUp):
            self._next_heartbeat = 0.0
        elif isinstance(event, LinkDown):
            logger.debug("Link down: %s", event.reason)
        else:
            self._on_message(event)

    def _pump(self) -> None:
        room = self.settings.inflight - len(self._inflight)
        if room <= 0 or not self.bus.connected:
            return
        skip = set(self._inflight.values())
        for item in self.outbox.peek(room, skip=skip):
            try:
                mid = self.bus.publish(item.topic, item.payload, qos=item.qos)
            except BusError as exc:  # the entry stays in the outbox for the next tick
                logger.warning("Publish failed, will retry: %s", exc)
                return
            if item.qos == 0:
                self.outbox.ack([item.seq])
            else:
                self._inflight[mid] = item.seq

    # -- what central sends ----------------------------------------------------
    def _on_message(self, msg: Received) -> None:
        try:
            env = envelope.decode(msg.payload)
            parsed = envelope.check_topic(msg.topic, env)
        except PayloadError as exc:
            self.rejected += 1
            logger.warning("Dropped a bad message on %s: %s", msg.topic, exc)
            return
        if parsed.device != self.settings.device_id:
            self.observe(parsed, env)  # another node's state this one follows
        elif parsed.channel == "config":
            self._on_config(env)
        elif parsed.channel == "cmd":
            self._on_command(parsed.name, env, msg)

    def _on_config(self, env: envelope.Envelope) -> None:
        try:
            body = parse_body(ConfigBody, env.body)
            config = validate_config(self.kind, body.values)
            self.apply_config(config)
        except (PayloadError, CommandError) as exc:
            version = str(env.body.get("version", ""))[:64]
            self.config_report = ConfigReport(
                version=version, status="refused", reason=str(exc)
            )
            logger.warning("Refused configuration %s: %s", version, exc)
        else:
            self.config = config
            self.config_report = ConfigReport(version=body.version, status="applied")
            logger.info("Applied configuration %s", body.version)
        if self.bus.connected:
            self.publish_state()

    def _on_command(self, name: str, env: envelope.Envelope, msg: Received) -> None:
        handler = self.commands.get(name) or self._unknown(name)
        try:
            args = self._authorise(name, env)
            reply = ReplyBody(command=name, ok=True, result=handler(args))
        except CommandAuthError as exc:
            reply = ReplyBody(command=name, ok=False, error=f"{exc.reason}: {exc}")
            logger.warning("Refused command %s: %s", name, exc)
            self.emit(
                "security", {"command": name, "reason": exc.reason, "detail": str(exc)}
            )
        except CommandError as exc:
            reply = ReplyBody(command=name, ok=False, error=str(exc))
            logger.warning("Refused command %s: %s", name, exc)
        out = envelope.make(
            self.settings.device_id, "reply", to_body(reply), now=self.clock.now()
        )
        own = topics.reply(self.settings.device_id)
        # A node answers only inside its own subtree (the broker's ACL allows no other).
        target = msg.response_topic or own
        if not target.startswith(own.removesuffix("reply")):
            target = own
        self.bus.publish(
            target, envelope.encode(out), qos=1, correlation=msg.correlation
        )

    def _authorise(self, name: str, env: envelope.Envelope) -> dict[str, Any]:
        """Verify a signed command (required by settings, or whenever signed)."""
        signed_only = name in self.signed_commands  # e.g. key rotation
        if signed_only or self.settings.require_signed_commands or "auth" in env.body:
            return verify_command(
                env.body,
                device=self.settings.device_id,
                name=name,
                keys=self.trust.keys(),
                now=self.clock.now(),
                ledger=self.trust,
            )
        args = env.body.get("args", {})
        if not isinstance(args, dict):
            raise CommandError(f"expected args as an object, got {type(args).__name__}")
        return args

    def _trust_key(self, args: dict[str, Any]) -> dict[str, Any]:
        """Rotate command keys: add one and/or retire one (must itself be signed)."""
        result: dict[str, Any] = {}
        try:
            if "add" in args:
                result["added"] = self.trust.add(str(args["add"]))
            if "remove" in args:
                result["removed"] = self.trust.remove(str(args["remove"]))
        except CommandAuthError as exc:
            raise CommandError(str(exc)) from exc
        return result

    def _unknown(self, name: str) -> CommandHandler:
        known = sorted(self.commands)

        def refuse(_args: dict[str, Any]) -> dict[str, Any]:
            raise CommandError(f"expected a command of {known}, got {name!r}")

        return refuse

    def _shutdown(self) -> None:
        deadline = self.clock.monotonic() + 2.0
        while (
            self._inflight and self.clock.monotonic() < deadline and self.bus.connected
        ):
            self._drain(0.05)
        if self.bus.connected:
            self.publish_state(online=False)
        self.bus.stop()
        self.outbox.close()
        self.trust.close()
        logger.info("Stopped")
