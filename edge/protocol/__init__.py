"""THE WIRE CONTRACT: topics, the envelope and the bodies, version 1.

This is the only module both nodes and central import. It does no I/O.
"""

from edge.protocol import envelope, messages, topics
from edge.protocol.envelope import (
    Envelope,
    check_clock,
    check_topic,
    decode,
    encode,
    make,
)
from edge.protocol.errors import PayloadError, TopicError

__all__ = [
    "Envelope",
    "PayloadError",
    "TopicError",
    "check_clock",
    "check_topic",
    "decode",
    "encode",
    "envelope",
    "make",
    "messages",
    "topics",
]
