"""The one envelope every Baling payload travels in, and its codec.

``{"v":1,"id":<uuid7>,"device":..,"ts":<RFC 3339 UTC>,"type":..,"body":{..}}``

Decoding is strict and total: any bytes either become an :class:`Envelope`
or raise :class:`PayloadError` naming the field and what arrived. Checks that
need the receiver's clock (a timestamp far in the future) take ``now`` as an
argument; this module never reads the clock. Network I/O is not handled here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import uuid_utils
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from edge.protocol import topics
from edge.protocol.errors import PayloadError, TopicError

VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 64 * 1024
_TYPE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
# The most keys a body (or any object in the wire models) may have.
MAX_KEYS: Final = 256


class Envelope(BaseModel):
    """One message on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: Literal[1]
    id: uuid.UUID
    device: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", max_length=64)]
    ts: datetime
    type: Annotated[str, Field(pattern=_TYPE_PATTERN, max_length=64)]
    body: dict[str, Any] = Field(max_length=MAX_KEYS)

    @field_validator("id")
    @classmethod
    def _uuid7(cls, value: uuid.UUID) -> uuid.UUID:
        if value.version != 7:  # noqa: PLR2004
            raise ValueError(f"expected a UUIDv7, got version {value.version}")
        return value

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "expected an RFC 3339 time with a UTC offset, got a naive time"
            )
        return value.astimezone(UTC)


def new_id() -> uuid.UUID:
    """Return a fresh UUIDv7, ordered by creation.

    Ordered within a process (a counter within the millisecond) and across its
    restarts, as long as the clock does not go back; never ahead of the clock.
    """
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def make(device: str, type_: str, body: dict[str, Any], *, now: datetime) -> Envelope:
    """Build a new envelope stamped ``now``.

    Raises:
        PayloadError: a field does not follow the contract.
    """
    try:
        return Envelope(
            v=VERSION,
            id=new_id(),
            device=device,
            ts=now.astimezone(UTC),
            type=type_,
            body=body,
        )
    except ValidationError as exc:
        raise _from_validation(exc) from exc


def encode(envelope: Envelope) -> bytes:
    """Serialise an envelope to compact UTF-8 JSON."""
    return envelope.model_dump_json().encode()


def _render(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004


def _from_validation(exc: ValidationError) -> PayloadError:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in first["loc"])
    got = _render(first.get("input"))
    kind = first["type"]
    if kind == "json_invalid":
        return PayloadError(
            f"expected a JSON object, got invalid JSON ({first['msg']})",
            got=got,
            reason="json",
        )
    if field == "v":
        return PayloadError(
            f"expected schema v{VERSION}, got v{got}",
            field="v",
            got=got,
            reason="version",
        )
    where = field or "payload"
    return PayloadError(
        f"{where}: {first['msg']}, got {got}", field=field, got=got, reason="schema"
    )


def decode(
    raw: bytes | bytearray | memoryview, *, max_bytes: int = MAX_PAYLOAD_BYTES
) -> Envelope:
    """Decode untrusted bytes into an envelope.

    Args:
        raw: the payload as received.
        max_bytes: payloads larger than this are refused before parsing.

    Raises:
        PayloadError: the payload is oversize, not JSON, or not a valid envelope.

    Returns:
        The validated envelope with ``ts`` in UTC.
    """
    size = len(raw)
    if size > max_bytes:
        raise PayloadError(
            f"expected at most {max_bytes} bytes, got {size}",
            got=str(size),
            reason="oversize",
        )
    try:
        return Envelope.model_validate_json(bytes(raw))
    except ValidationError as exc:
        raise _from_validation(exc) from exc
    except (
        ValueError,
        RecursionError,
    ) as exc:  # pragma: no cover - pydantic maps these
        raise PayloadError(
            f"expected a JSON object, got {type(exc).__name__}", reason="json"
        ) from exc


def check_topic(topic: str, envelope: Envelope) -> topics.Topic:
    """Check that an envelope belongs on ``topic``.

    Raises:
        TopicError: the topic is not ours, names another device, or its
            channel contradicts the envelope's ``type``.

    Returns:
        The parsed topic.
    """
    parsed = topics.parse(topic)
    if parsed.device != envelope.device:
        raise TopicError(
            f"expected device {parsed.device!r} from the topic, "
            f"got {envelope.device!r}",
            field="device",
            got=envelope.device,
            reason="topic_mismatch",
        )
    expected = parsed.name or parsed.channel
    if envelope.type != expected:
        raise TopicError(
            f"expected type {expected!r} on {topic}, got {envelope.type!r}",
            field="type",
            got=envelope.type,
            reason="topic_mismatch",
        )
    return parsed


def check_clock(
    envelope: Envelope,
    *,
    now: datetime,
    max_ahead: timedelta = timedelta(minutes=5),
    max_behind: timedelta = timedelta(days=30),
) -> None:
    """Refuse a timestamp far in the future or past of the receiver's ``now``.

    A node offline for a day still delivers its backlog, so the past bound is
    generous; a clock ahead of the receiver is almost always a broken RTC.

    Raises:
        PayloadError: ``ts`` lies outside ``[now - max_behind, now + max_ahead]``.
    """
    if envelope.ts > now + max_ahead:
        raise PayloadError(
            f"expected ts at most {max_ahead} ahead of {now.isoformat()}, "
            f"got {envelope.ts.isoformat()}",
            field="ts",
            got=envelope.ts.isoformat(),
            reason="ts_future",
        )
    if envelope.ts < now - max_behind:
        raise PayloadError(
            f"expected ts within {max_behind} of {now.isoformat()}, "
            f"got {envelope.ts.isoformat()}",
            field="ts",
            got=envelope.ts.isoformat(),
            reason="ts_past",
        )
