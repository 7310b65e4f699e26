"""Topic builders and the topic parser for the Baling MQTT contract (v1).

Every topic a node or central uses is built here; nothing else formats topic
strings. Subscriptions (wildcards, shared groups) are built here as well.
Network I/O is not handled here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from edge.protocol.errors import TopicError

ROOT = "bl/v1"
SHARED_GROUP = "central"

_DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it may appear in a topic.

    Raises:
        TopicError: it is empty, too long, or holds characters other than
            lower-case letters, digits, ``-`` and ``_``.
    """
    if not _DEVICE_ID.fullmatch(device_id):
        raise TopicError(
            f"expected a device id of [a-z0-9_-] (1-64 chars), got {device_id!r:.80}",
            field="device",
            got=device_id[:80],
            reason="device_id",
        )
    return device_id


def _check_name(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise TopicError(
            f"expected a {what} of [a-z0-9_.-] (1-64 chars), got {name!r:.80}",
            field=what,
            got=name[:80],
            reason=what,
        )
    return name


def state(device_id: str) -> str:
    """Retained online/offline state with version and health."""
    return f"{ROOT}/{check_device_id(device_id)}/state"


def telemetry(device_id: str) -> str:
    """Periodic measurements."""
    return f"{ROOT}/{check_device_id(device_id)}/telemetry"


def event(device_id: str, event_type: str) -> str:
    """Durable events sent from the outbox with QoS 1."""
    return (
        f"{ROOT}/{check_device_id(device_id)}/event/{_check_name(event_type, 'type')}"
    )


def sos(device_id: str) -> str:
    """A handheld's SOS: its own lane, so that no bulk event stands before it.

    Not under ``event/``: central's bulk ingest never subscribes to it, and
    an SOS never waits in a queue behind thousands of positions.
    """
    return f"{ROOT}/{check_device_id(device_id)}/sos"


def config(device_id: str) -> str:
    """Retained desired configuration written by central."""
    return f"{ROOT}/{check_device_id(device_id)}/config"


def command(device_id: str, name: str) -> str:
    """A command from central to one node."""
    return f"{ROOT}/{check_device_id(device_id)}/cmd/{_check_name(name, 'command')}"


def reply(device_id: str) -> str:
    """Command results from a node."""
    return f"{ROOT}/{check_device_id(device_id)}/reply"


def node_inbox(device_id: str) -> list[str]:
    """What a node subscribes to: its own commands and configuration."""
    check_device_id(device_id)
    return [f"{ROOT}/{device_id}/cmd/+", f"{ROOT}/{device_id}/config"]


def shared(topic_filter: str, group: str = SHARED_GROUP) -> str:
    """Wrap a filter in an MQTT 5 shared subscription for central's workers."""
    return f"$share/{group}/{topic_filter}"


def all_events() -> str:
    """Filter for every device's events."""
    return f"{ROOT}/+/event/#"


def all_sos() -> str:
    """Filter for every handheld's SOS (central's SOS lane)."""
    return f"{ROOT}/+/sos"


def all_states() -> str:
    """Filter for every device's state."""
    return f"{ROOT}/+/state"


def all_telemetry() -> str:
    """Filter for every device's telemetry."""
    return f"{ROOT}/+/telemetry"


def all_replies() -> str:
    """Filter for every device's command replies."""
    return f"{ROOT}/+/reply"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: whose it is, which channel, and the trailing name."""

    device: str
    channel: str
    name: str = ""


_CHANNELS_WITH_NAME = {"event", "cmd"}
_CHANNELS_PLAIN = {"state", "telemetry", "config", "reply", "sos"}


@lru_cache(maxsize=65536)  # a county has a bounded set of topics; parsing is hot
def parse(topic: str) -> Topic:
    """Parse a Baling topic.

    Raises:
        TopicError: the topic is not under ``bl/v1`` or has an unknown shape.
    """
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != ROOT:  # noqa: PLR2004
        raise TopicError(
            f"expected a topic under {ROOT}/, got {topic!r:.120}",
            field="topic",
            got=topic[:120],
            reason="topic",
        )
    device, channel, rest = parts[2], parts[3], parts[4:]
    check_device_id(device)
    if channel in _CHANNELS_PLAIN and not rest:
        return Topic(device=device, channel=channel)
    if channel in _CHANNELS_WITH_NAME and len(rest) == 1:
        return Topic(device=device, channel=channel, name=_check_name(rest[0], "type"))
    raise TopicError(
        f"expected state|telemetry|config|reply|sos|event/T|cmd/N, got {topic!r:.120}",
        field="topic",
        got=topic[:120],
        reason="topic",
    )
