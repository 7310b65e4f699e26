"""The MQTT 5 link on paho-mqtt 2.x: connect, reconnect, publish, receive.

paho's callbacks run on the network thread started here; they only convert
what arrived into :class:`Received` / :class:`Published` / :class:`LinkUp` /
:class:`LinkDown` values and put them on :attr:`PahoBus.inbox`. The owner's
loop takes them from there. Reconnection uses jittered exponential backoff
(:class:`Backoff`). What to publish, and when, is left to the caller
(the outbox pump in :mod:`edge.agent`).
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.errors import BusError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from paho.mqtt.client import SocketLike

logger = logging.getLogger(__name__)

_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id
_READ_SIZE = 64 * 1024  # what one read of an owner-driven link takes at most


@dataclass(frozen=True, slots=True)
class Received:
    """A message from the broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    response_topic: str | None = None
    correlation: bytes | None = None
    link: int = 0  # which connection delivered it; see PahoBus.ack


@dataclass(frozen=True, slots=True)
class Published:
    """The broker acknowledged (or refused) one of our QoS 1 publishes."""

    mid: int
    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The link is connected; ``session_present`` per CONNACK."""

    session_present: bool


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The link was lost or refused."""

    reason: str


BusEvent = Received | Published | LinkUp | LinkDown


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Files for a TLS (optionally mutual TLS) connection."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Will:
    """The last will the broker publishes if we vanish."""

    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


class Backoff:
    """Jittered exponential backoff ("full jitter").

    Each delay is uniform in ``[base/2, min(cap, base * 2**n)]`` so a county's
    nodes that lost the broker together do not all return in the same second.
    """

    def __init__(
        self,
        *,
        initial: float = 0.5,
        cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < initial <= cap:
            raise ValueError(f"expected 0 < initial <= cap, got {initial}, {cap}")
        self._initial = initial
        self._cap = cap
        self._attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def next(self) -> float:
        """Return the next delay in seconds."""
        high = min(self._cap, self._initial * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 30)
        return self._rng.uniform(min(self._initial / 2, high), high)

    def reset(self) -> None:
        """Start again from the initial delay (after a good connection)."""
        self._attempt = 0


class Bus(Protocol):
    """What agents and central need from a message bus."""

    inbox: queue.SimpleQueue[BusEvent]

    @property
    def connected(self) -> bool:
        """Whether the link is up now."""
        ...

    def start(self) -> None:
        """Connect in the background and keep reconnecting."""
        ...

    def stop(self) -> None:
        """Disconnect cleanly (no last will) and stop the network thread."""
        ...

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> int:
        """Queue a publish; return its message id."""
        ...

    def ack(self, msg: Received) -> None:
        """Acknowledge a received QoS 1 message (manual-ack links only)."""
        ...

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Add a subscription, kept across reconnects."""
        ...


@dataclass
class _Conn:
    host: str
    port: int
    keepalive: int
    clean_start: bool
    session_expiry: int
    subscriptions: list[tuple[str, int]] = field(default_factory=list)
    receive_maximum: int | None = None


class _BufferedSocket:
    """A connected socket whose small reads are served from one large ``recv``.

    paho reads each packet with three or four ``recv`` calls (the command
    byte, each byte of the length, then the rest): a third of an ingest
    worker's link thread at full rate. This reads what the kernel holds in
    one call and hands paho its pieces; ``pending`` tells paho's loop that
    bytes are waiting so it does not sleep in ``select`` over them (as it
    does for TLS's own buffer, which is counted too).
    """

    def __init__(self, sock: SocketLike) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, buffer_size: int) -> bytes:
        if self._pos >= len(self._buf):
            data = self._sock.recv(max(buffer_size, _READ_SIZE))
            if len(data) <= buffer_size:
                return data  # also b"" at the end of the stream
            self._buf, self._pos = data, 0
        chunk = self._buf[self._pos : self._pos + buffer_size]
        self._pos += len(chunk)
        return chunk

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._buf) - self._pos + (inner() if inner is not None else 0)

    def send(self, buffer: bytes | bytearray) -> int:
        return self._sock.send(buffer)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:  # noqa: FBT001 - socket's signature
        self._sock.setblocking(flag)


class _BufferedClient(paho.Client):
    """paho's client reading through a :class:`_BufferedSocket`."""

    def _create_socket(self) -> SocketLike:
        # paho's own hook: it wraps the socket here for websockets too.
        return _BufferedSocket(super()._create_socket())


class PahoBus:
    """An MQTT 5 link on paho-mqtt with its own reconnect loop."""

    def __init__(
        self,
        *,
        client_id: str,
        host: str,
        port: int,
        subscriptions: list[tuple[str, int]] | None = None,
        will: Will | None = None,
        tls: TlsFiles | None = None,
        keepalive: int = 30,
        clean_start: bool = False,
        session_expiry: int = 24 * 3600,
        inflight: int = 100,
        manual_ack: bool = False,
        receive_maximum: int | None = None,
        backoff: Backoff | None = None,
        threaded: bool = True,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        # SimpleQueue: a put and a get cost a twentieth of queue.Queue's, which
        # counts once per message on a busy link (the ingest worker's).
        self.inbox: queue.SimpleQueue[BusEvent] = queue.SimpleQueue()
        self._conn = _Conn(
            host=host,
            port=port,
            keepalive=keepalive,
            clean_start=clean_start,
            session_expiry=session_expiry,
            subscriptions=list(subscriptions or []),
            receive_maximum=receive_maximum,
        )
        self._backoff = backoff or Backoff()
        self._stop = threading.Event()
        self._up = threading.Event()
        self._subscribed = threading.Event()
        self._link = 0
        self._threaded = threaded
        self._manual_ack = manual_ack
        self._arrived = 0  # messages received on any connection (see poll)
        self._socket_open = False
        self._connected_once = False
        self._retry_at = 0.0
        self._link_lock = threading.RLock()  # paho may call back into us inside ack()
        self._thread: threading.Thread | None = None
        # An owner-driven link reads through a buffer (see _BufferedSocket).
        client_class = paho.Client if threaded else _BufferedClient
        self._client = client_class(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=manual_ack,
        )
        # Our outbox bounds what is in flight; paho only has to hold that much.
        self._client.max_inflight_messages_set(inflight)
        self._client.max_queued_messages_set(0)
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls is not None:
            self._client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            self._client.will_set(
                will.topic, will.payload, qos=will.qos, retain=will.retain
            )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe

    # -- paho callbacks: convert and enqueue, nothing else -------------------
    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            logger.warning("Broker refused the connection: %s", reason)
            self.inbox.put(LinkDown(reason=str(reason)))
            return
        if self._conn.subscriptions:
            client.subscribe(self._conn.subscriptions)
        else:
            self._subscribed.set()
        self._up.set()
        self._backoff.reset()
        logger.info("Connected to %s:%s", self._conn.host, self._conn.port)
        self.inbox.put(LinkUp(session_present=bool(flags.session_present)))

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            logger.error("Broker refused subscriptions: %s", ", ".join(refused))
        self._subscribed.set()

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: paho.DisconnectFlags | None,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        with self._link_lock:
            # From here on, acks for what the old connection delivered are void.
            self._link += 1
            was_up = self._up.is_set()
            self._up.clear()
            self._subscribed.clear()
        if was_up:
            logger.info("Disconnected: %s", reason)
            self.inbox.put(LinkDown(reason=str(reason)))

    def _on_message(
        self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage
    ) -> None:
        self._arrived += 1
        props = getattr(msg, "properties", None)
        response = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        self.inbox.put(
            Received(
                topic=msg.topic,
                payload=bytes(msg.payload),
                qos=msg.qos,
                retain=bool(msg.retain),
                mid=msg.mid,
                response_topic=response,
                correlation=correlation,
                link=self._link,
            )
        )

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: object,
        mid: int,
        reason: ReasonCode,
        _props: Properties,
    ) -> None:
        self.inbox.put(
            Published(
                mid=mid,
                ok=not reason.is_failure,
                reason="" if not reason.is_failure else str(reason),
            )
        )

    # -- the link ----------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Whether the link is up now."""
        return self._up.is_set()

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Add a subscription now and on every reconnect (a no-op if present)."""
        if any(f == topic_filter for f, _ in self._conn.subscriptions):
            return
        self._conn.subscriptions.append((topic_filter, qos))
        if self._up.is_set():
            self._client.subscribe(topic_filter, qos=qos)

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout`` seconds pass."""
        return self._up.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the broker has answered our subscriptions."""
        return self._subscribed.wait(timeout)

    def start(self) -> None:
        """Start the network thread; it connects and keeps reconnecting.

        A ``threaded=False`` link starts no thread: the owner calls :meth:`poll`.
        """
        if self._thread is not None:
            raise BusError("expected a stopped link, got one already started")
        self._stop.clear()
        if not self._threaded:
            return
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._conn.session_expiry
        if self._conn.receive_maximum is not None:
            # How many unacknowledged QoS 1 messages the broker may push at us;
            # manual-ack consumers need room for a whole batch.
            props.ReceiveMaximum = self._conn.receive_maximum
        self._client.connect(
            self._conn.host,
            self._conn.port,
            keepalive=self._conn.keepalive,
            clean_start=self._conn.clean_start,
            properties=props,
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll(0.1)
            except Exception:  # the link thread must outlive any one bad turn
                if self._stop.is_set():
                    return
                logger.exception("MQTT link error; reconnecting")
                self._lost()

    def poll(self, timeout: float) -> None:
        """Drive the link once: (re)connect when due, else read and write.

        The network thread calls this in a loop. A link built with
        ``threaded=False`` has no such thread: its owner calls ``poll`` from
        its own loop, so the MQTT work and the owner's work never contend for
        the GIL (the ingest worker does this).
        """
        if self._socket_open:
            rc = self._client.loop(timeout=timeout)
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and not self._threaded:
                rc = self._read_burst()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._lost()
            return
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            self._stop.wait(min(wait, timeout))
            return
        try:
            if self._connected_once:
                self._client.reconnect()
            else:
                self._connect()
                self._connected_once = True
        except (OSError, ssl.SSLError) as exc:
            delay = self._backoff.next()
            logger.warning(
                "Cannot reach %s:%s (%s); retrying in %.1fs",
                self._conn.host,
                self._conn.port,
                exc,
                delay,
            )
            self.inbox.put(LinkDown(reason=str(exc)))
            self._retry_at = time.monotonic() + delay
            return
        self._socket_open = True

    def _read_burst(self, most: int = 500) -> MQTTErrorCode:
        """Read the messages already waiting on the socket, without a select each.

        paho's ``loop()`` reads one packet per ``select()``; an owner-driven
        link under load (the ingest worker) reads on while messages keep
        coming, up to ``most``, and returns at the first read that brings none.
        """
        for _ in range(most):
            before = self._arrived
            rc = self._client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._arrived == before:
                return rc
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _lost(self) -> None:
        if self._up.is_set():
            self._on_disconnect(
                self._client,
                None,
                None,
                ReasonCode(PacketTypes.DISCONNECT, identifier=0x80),
                None,
            )
        self._socket_open = False
        self._retry_at = time.monotonic() + self._backoff.next()

    def stop(self) -> None:
        """Disconnect cleanly (no last will) and stop the network thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._up.is_set():
            self._client.disconnect()
            for _ in range(10):  # let DISCONNECT leave the socket
                if self._client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        self._up.clear()
        self._socket_open = False

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> int:
        """Queue a publish; paho sends it now or after the next reconnect.

        Returns:
            The message id that a later :class:`Published` refers to.
        """
        props: Properties | None = None
        if response_topic is not None or correlation is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if response_topic is not None:
                props.ResponseTopic = response_topic
            if correlation is not None:
                props.CorrelationData = correlation
        info = self._client.publish(
            topic, payload, qos=qos, retain=retain, properties=props
        )
        # NO_CONN / CONN_LOST: paho keeps a QoS 1 message, sends it on reconnect.
        if info.rc not in (
            MQTTErrorCode.MQTT_ERR_SUCCESS,
            MQTTErrorCode.MQTT_ERR_NO_CONN,
            MQTTErrorCode.MQTT_ERR_CONN_LOST,
        ):
            raise BusError(f"expected paho to queue the publish, got {info.rc.name}")
        return info.mid

    def ack(self, msg: Received) -> None:
        """Acknowledge a received message after its effect is committed.

        A message that arrived on an earlier connection is not acknowledged:
        its packet id means nothing now (after a broker restart the same id
        may name another message), and the broker delivers it again anyway,
        where the receiver's dedupe by event id drops it.
        """
        if msg.qos == 0:
            return
        with self._link_lock:
            if msg.link != self._link or not self._up.is_set():
                logger.debug("Not acking mid %d from an earlier connection", msg.mid)
                return
            self._client.ack(msg.mid, msg.qos)

    def ack_many(self, msgs: Sequence[Received]) -> None:
        """Acknowledge a committed batch as :meth:`ack` does each, in one write.

        paho writes every PUBACK with its own ``send()`` (a tenth of an
        ingest worker's time at full rate); here the QoS 1 acknowledgements
        of this connection go to the socket as one buffer, through paho's
        own outgoing queue so that they stay in order with what it sends.
        QoS 2 (not used by Baling) goes through :meth:`ack`.
        """
        if not self._manual_ack:
            return  # paho acknowledged them on receipt
        with self._link_lock:
            if not self._up.is_set():
                logger.debug("Not acking %d messages: the link is down", len(msgs))
                return
            link = self._link
            pubacks = bytearray()
            for msg in msgs:
                if msg.qos == 1 and msg.link == link:
                    pubacks += _PUBACK.pack(paho.PUBACK, 2, msg.mid)
                elif msg.qos == 2:  # noqa: PLR2004 - QoS 2
                    self.ack(msg)
            if pubacks:
                # paho has no public call for several acknowledgements at once.
                self._client._packet_queue(paho.PUBACK, bytes(pubacks), 0, 1)  # noqa: SLF001
