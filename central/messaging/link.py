"""Central's publishing link: desired configuration out, commands and replies.

Commands go out on ``cmd/{name}`` with an MQTT 5 response topic and
correlation data; the reply comes back on the node's ``reply`` topic, which
this link subscribes to (not shared: every API process sees every reply and
keeps the ones it is waiting for).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from typing import TYPE_CHECKING, Any

from central.errors import CentralError
from edge.bus import PahoBus, Received, TlsFiles
from edge.protocol import PayloadError, decode, encode, make, topics
from edge.protocol.messages import ConfigBody, ReplyBody, parse_body, to_body
from edge.protocol.signing import sign_command

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.clock import Clock

logger = logging.getLogger(__name__)


class CommandTimeoutError(CentralError, TimeoutError):
    """No reply came back in time."""


class PacketTooLargeError(CentralError, ValueError):
    """A publish would exceed the broker's maximum packet size."""


# The broker's ``max_packet_size`` (baling/broker.py, provisioning/brokerconf.py).
BROKER_MAX_PACKET = 1024 * 1024
# Fixed header, topic length, properties (response topic, correlation data):
# generous, so a payload that passes here never meets the broker's limit.
PACKET_OVERHEAD = 1024


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: ReplyBody | None = None


class CentralLink:
    """One process's link for publishing and for command replies."""

    def __init__(
        self,
        *,
        bus: PahoBus,
        clock: Clock,
        signer: Ed25519PrivateKey | None = None,
        max_packet: int = BROKER_MAX_PACKET,
    ) -> None:
        self.bus = bus
        self.max_packet = max_packet
        self.clock = clock
        self.signer = signer
        self._waiters: dict[bytes, _Waiter] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Connect and start routing replies."""
        self.bus.start()
        self._thread = threading.Thread(
            target=self._run, name="central-link", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.bus.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.bus.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(item, Received) and item.correlation is not None:
                self._on_reply(item)

    def fit(self, topic: str, payload: bytes) -> None:
        """Refuse (never queue) a publish the broker would drop with the link.

        A packet over the broker's ``max_packet_size`` makes Mosquitto close
        the connection, and paho resends it on every reconnect: one oversize
        command would take the link down for good.

        Raises:
            PacketTooLargeError: naming the limit and the size.
        """
        size = len(payload) + len(topic.encode()) + PACKET_OVERHEAD
        if size > self.max_packet:
            raise PacketTooLargeError(
                f"expected an MQTT packet of at most {self.max_packet} bytes "
                f"(the broker's max_packet_size), got {size} bytes for {topic}"
            )

    def _on_reply(self, msg: Received) -> None:
        with self._lock:
            waiter = self._waiters.get(bytes(msg.correlation or b""))
        if waiter is None:
            return
        try:
            env = decode(msg.payload)
            waiter.reply = parse_body(ReplyBody, env.body)
        except PayloadError as exc:
            logger.warning("Bad reply on %s: %s", msg.topic, exc)
            waiter.reply = ReplyBody(command="?", ok=False, error=f"bad reply: {exc}")
        waiter.done.set()

    def publish_config(
        self, device_id: str, *, version: str, values: dict[str, Any]
    ) -> None:
        """Publish a device's desired configuration, retained."""
        body = ConfigBody(version=version, values=values)
        env = make(device_id, "config", to_body(body), now=self.clock.now())
        payload = encode(env)
        self.fit(topics.config(device_id), payload)
        self.bus.publish(topics.config(device_id), payload, qos=1, retain=True)

    def signed(self, device_id: str, name: str, args: dict[str, Any]) -> bytes:
        """The command's payload as it goes on the wire (signed when a key is set)."""
        body: dict[str, Any] = {"args": args}
        if self.signer is not None:
            body = sign_command(
                self.signer,
                device=device_id,
                name=name,
                args=args,
                nonce=uuid.uuid4().hex,
                now=self.clock.now(),
            )
        return encode(make(device_id, name, body, now=self.clock.now()))

    def send(self, device_id: str, name: str, args: dict[str, Any]) -> None:
        """Send a signed command without waiting (alerts, messages: QoS 1).

        The node's reply comes back on its reply topic and is not awaited;
        what the officer did with it arrives later as an event.

        Raises:
            PacketTooLargeError: the command would not fit the broker's limit.
        """
        payload = self.signed(device_id, name, args)
        self.fit(topics.command(device_id, name), payload)
        self.bus.publish(
            topics.command(device_id, name),
            payload,
            qos=1,
            response_topic=topics.reply(device_id),
        )

    def command(
        self, device_id: str, name: str, args: dict[str, Any], *, timeout: float = 10.0
    ) -> ReplyBody:
        """Send a command and wait for its reply.

        Raises:
            CommandTimeoutError: no reply within ``timeout`` seconds.
            PacketTooLargeError: the command would not fit the broker's limit.
        """
        payload = self.signed(device_id, name, args)
        self.fit(topics.command(device_id, name), payload)
        correlation = uuid.uuid4().bytes
        waiter = _Waiter()
        with self._lock:
            self._waiters[correlation] = waiter
        try:
            self.bus.publish(
                topics.command(device_id, name),
                payload,
                qos=1,
                response_topic=topics.reply(device_id),
                correlation=correlation,
            )
            if not waiter.done.wait(timeout) or waiter.reply is None:
                raise CommandTimeoutError(
                    f"expected a reply from {device_id} within {timeout}s, got none"
                )
            return waiter.reply
        finally:
            with self._lock:
                self._waiters.pop(correlation, None)


def make_central_link(
    *,
    worker_id: str,
    host: str,
    port: int,
    clock: Clock,
    signer: Ed25519PrivateKey | None = None,
    tls: TlsFiles | None = None,
    max_packet: int = BROKER_MAX_PACKET,
) -> CentralLink:
    """Build the link an API process publishes through."""
    bus = PahoBus(
        client_id=f"central-api-{worker_id}",
        host=host,
        port=port,
        subscriptions=[(topics.all_replies(), 1)],
        clean_start=True,
        session_expiry=0,
        tls=tls,
    )
    return CentralLink(bus=bus, clock=clock, signer=signer, max_packet=max_packet)
