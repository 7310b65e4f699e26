"""An embedded MQTT 5 broker in pure Python, for ``baling up`` without Mosquitto.

It speaks enough of MQTT 5 for Baling on one machine: QoS 0 and 1, retained
messages, last wills, persistent sessions (in memory, kept while the process
runs), ``+``/``#`` wildcards, shared subscriptions (``$share/group/filter``,
round robin) and the properties Baling uses (response topic, correlation
data, session expiry), which it forwards untouched. It has no TLS, no
authentication, no QoS 2 and no persistence across its own restart: it is a
demo convenience, and ``baling up`` says so when it uses it. Real
deployments use Mosquitto or EMQX. No pure-Python MQTT 5 broker is kept on
PyPI (amqtt speaks 3.1.1 only), hence this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import threading
from collections import deque
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
_SESSION_EXPIRY = 0x11
# Property id -> value size: 1/2/4 bytes, "v" varint, "s" string/binary, "p" pair.
_PROPS: dict[int, int | str] = {
    0x01: 1,
    0x02: 4,
    0x03: "s",
    0x08: "s",
    0x09: "s",
    0x0B: "v",
    0x11: 4,
    0x12: "s",
    0x13: 2,
    0x15: "s",
    0x16: "s",
    0x17: 1,
    0x18: 4,
    0x19: 1,
    0x1A: "s",
    0x1C: "s",
    0x1F: "s",
    0x21: 2,
    0x22: 2,
    0x23: 2,
    0x24: 1,
    0x25: 1,
    0x26: "p",
    0x27: 4,
    0x28: 1,
    0x29: 1,
    0x2A: 1,
}


class ProtocolError(ValueError):
    """A packet this broker cannot accept; the connection is closed."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _Reader:
    """Reads MQTT fields from one packet body."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProtocolError(
                f"expected {n} more bytes, got {len(self.data) - self.pos}"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def varint(self) -> int:
        value, shift = 0, 0
        for _ in range(4):
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ProtocolError("expected a variable byte integer of at most 4 bytes")

    def blob(self) -> bytes:
        return self.take(self.u16())

    def text(self) -> str:
        try:
            return self.blob().decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError("expected UTF-8 text") from exc

    def props(self) -> tuple[bytes, dict[int, int]]:
        """Return the raw property block and its integer-valued properties."""
        end = self.varint() + self.pos
        start, ints = self.pos, {}
        while self.pos < end:
            pid = self.u8()
            kind = _PROPS.get(pid)
            if kind is None:
                raise ProtocolError(f"expected a known property id, got {pid:#x}")
            if kind == "s":
                self.blob()
            elif kind == "p":
                self.blob()
                self.blob()
            elif kind == "v":
                ints[pid] = self.varint()
            else:
                ints[pid] = int.from_bytes(self.take(int(kind)), "big")  # 1, 2 or 4
        return self.data[start:end], ints


def _blob(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching with ``+`` and ``#``; ``$`` topics need a literal start."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    fparts, tparts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(fparts):
        if part == "#":
            return True
        if i >= len(tparts) or (part not in ("+", tparts[i])):
            return False
    return len(fparts) == len(tparts)


@dataclass
class _Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    props: bytes


@dataclass
class _Session:
    client_id: str
    subs: dict[str, int] = field(default_factory=dict)  # filter (with $share) -> qos
    queue: deque[_Message] = field(default_factory=deque)
    inflight: dict[int, _Message] = field(default_factory=dict)
    expiry: int = 0
    writer: asyncio.StreamWriter | None = None
    will: _Message | None = None
    pids: itertools.cycle[int] = field(
        default_factory=lambda: itertools.cycle(range(1, 65536))
    )


def _split_share(topic_filter: str) -> tuple[str | None, str]:
    if topic_filter.startswith("$share/"):
        _, group, rest = topic_filter.split("/", 2)
        return group, rest
    return None, topic_filter


class MiniBroker:
    """The embedded broker; runs its own event loop in a background thread."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._sessions: dict[str, _Session] = {}
        self._retained: dict[str, _Message] = {}
        self._rr: dict[tuple[str, str], int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Listen on ``host:port`` (port 0 picks a free one) and return."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("embedded broker did not start listening")

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._client, self.host, self.port)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(self._server.serve_forever())
        loop.close()

    def stop(self) -> None:
        """Close every connection and the listener."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        def close() -> None:
            server.close()
            for session in self._sessions.values():
                if session.writer is not None:
                    session.writer.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()

        loop.call_soon_threadsafe(close)
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- one connection --------------------------------------------------------
    async def _client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        session: _Session | None = None
        clean = False
        try:
            kind, _flags, body = await self._read(reader, keepalive=10)
            session, keepalive = self._connect(kind, body, writer)
            while True:
                kind, flags, body = await self._read(reader, keepalive=keepalive)
                if kind == DISCONNECT:
                    reason = body[0] if body else 0
                    clean = reason == 0
                    break
                self._handle(session, kind, flags, body)
                await writer.drain()
        except (
            ProtocolError,
            asyncio.IncompleteReadError,
            ConnectionError,
            TimeoutError,
        ) as exc:
            logger.debug("Closing a client: %s", exc)
        finally:
            writer.close()
            if session is not None and session.writer is writer:
                self._gone(session, clean=clean)

    async def _read(
        self, reader: asyncio.StreamReader, *, keepalive: int
    ) -> tuple[int, int, bytes]:
        limit = keepalive * 1.5 if keepalive else None
        first = await asyncio.wait_for(reader.readexactly(1), limit)
        length, shift = 0, 0
        for _ in range(4):
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        return first[0] >> 4, first[0] & 0x0F, await reader.readexactly(length)

    def _connect(
        self, kind: int, body: bytes, writer: asyncio.StreamWriter
    ) -> tuple[_Session, int]:
        if kind != CONNECT:
            raise ProtocolError(f"expected CONNECT first, got packet type {kind}")
        r = _Reader(body)
        if r.text() != "MQTT" or r.u8() != 5:  # noqa: PLR2004
            writer.write(_packet(CONNACK, 0, b"\x00\x84\x00"))  # unsupported version
            raise ProtocolError("expected MQTT 5")
        flags, keepalive = r.u8(), r.u16()
        _raw, props = r.props()
        client_id = r.text() or f"auto-{id(writer):x}"
        will = None
        if flags & 0x04:
            will_props, _ = r.props()
            will = _Message(
                r.text(), r.blob(), (flags >> 3) & 3, bool(flags & 0x20), will_props
            )
        old = self._sessions.get(client_id)
        present = old is not None and not flags & 0x02
        if old is not None and old.writer is not None:
            old.writer.close()  # session take-over
        session = old if present and old is not None else _Session(client_id)
        session.expiry = props.get(_SESSION_EXPIRY, 0)
        session.writer, session.will = writer, will
        self._sessions[client_id] = session
        writer.write(_packet(CONNACK, 0, bytes([1 if present else 0, 0, 0])))
        for pid, msg in session.inflight.items():
            self._send(session, msg, pid, dup=True)
        while session.queue:
            self._deliver_to(session, session.queue.popleft())
        return session, keepalive

    def _gone(self, session: _Session, *, clean: bool) -> None:
        session.writer = None
        if not clean and session.will is not None:
            self._route(session.will)
        session.will = None
        if session.expiry == 0:
            self._sessions.pop(session.client_id, None)

    def _handle(self, session: _Session, kind: int, flags: int, body: bytes) -> None:
        r = _Reader(body)
        if kind == PUBLISH:
            qos = (flags >> 1) & 3
            topic = r.text()
            pid = r.u16() if qos else 0
            props, _ = r.props()
            msg = _Message(topic, body[r.pos :], min(qos, 1), bool(flags & 1), props)
            self._route(msg)
            if qos and session.writer is not None:
                session.writer.write(_packet(PUBACK, 0, struct.pack(">H", pid)))
        elif kind == PUBACK:
            session.inflight.pop(r.u16(), None)
        elif kind == SUBSCRIBE:
            self._subscribe(session, r)
        elif kind == UNSUBSCRIBE:
            pid = r.u16()
            r.props()
            codes = bytearray()
            while r.pos < len(body):
                codes.append(
                    0 if session.subs.pop(r.text(), None) is not None else 0x11
                )
            self._write(
                session, _packet(UNSUBACK, 0, struct.pack(">H", pid) + b"\x00" + codes)
            )
        elif kind == PINGREQ:
            self._write(session, _packet(PINGRESP, 0, b""))
        else:
            raise ProtocolError(f"expected a client packet type, got {kind}")

    def _subscribe(self, session: _Session, r: _Reader) -> None:
        pid = r.u16()
        r.props()
        codes = bytearray()
        while r.pos < len(r.data):
            topic_filter, options = r.text(), r.u8()
            qos = min(options & 3, 1)
            session.subs[topic_filter] = qos
            codes.append(qos)
            if _split_share(topic_filter)[0] is None:
                for msg in list(self._retained.values()):
                    if topic_matches(topic_filter, msg.topic):
                        self._deliver_to(session, msg, qos=qos, retain=True)
        self._write(
            session, _packet(SUBACK, 0, struct.pack(">H", pid) + b"\x00" + codes)
        )

    # -- routing ---------------------------------------------------------------
    def _route(self, msg: _Message) -> None:
        if msg.retain:
            if msg.payload:
                self._retained[msg.topic] = msg
            else:
                self._retained.pop(msg.topic, None)
        groups: dict[tuple[str, str], list[tuple[_Session, int]]] = {}
        for session in list(self._sessions.values()):
            best = -1
            for topic_filter, qos in session.subs.items():
                group, real = _split_share(topic_filter)
                if not topic_matches(real, msg.topic):
                    continue
                if group is None:
                    best = max(best, qos)
                else:
                    groups.setdefault((group, real), []).append((session, qos))
            if best >= 0:
                self._deliver_to(session, msg, qos=best, retain=False)
        for key, members in groups.items():
            online = [m for m in members if m[0].writer is not None] or members
            turn = self._rr.get(key, 0)
            self._rr[key] = turn + 1
            chosen, qos = online[turn % len(online)]
            self._deliver_to(chosen, msg, qos=qos, retain=False)

    def _deliver_to(
        self,
        session: _Session,
        msg: _Message,
        *,
        qos: int | None = None,
        retain: bool | None = None,
    ) -> None:
        out = _Message(
            msg.topic,
            msg.payload,
            min(msg.qos, msg.qos if qos is None else qos),
            msg.retain if retain is None else retain,
            msg.props,
        )
        if session.writer is None:
            if out.qos and session.expiry:
                session.queue.append(out)
            return
        pid = 0
        if out.qos:
            pid = next(session.pids)
            session.inflight[pid] = out
        self._send(session, out, pid)

    def _send(
        self, session: _Session, msg: _Message, pid: int, *, dup: bool = False
    ) -> None:
        flags = (0x08 if dup else 0) | (msg.qos << 1) | (1 if msg.retain else 0)
        body = _blob(msg.topic.encode()) + (struct.pack(">H", pid) if msg.qos else b"")
        body += _varint(len(msg.props)) + msg.props + msg.payload
        self._write(session, _packet(PUBLISH, flags, body))

    @staticmethod
    def _write(session: _Session, data: bytes) -> None:
        if session.writer is not None:
            session.writer.write(data)
