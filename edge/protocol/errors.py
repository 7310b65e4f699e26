"""Errors of the wire contract.

Decoding never lets a third-party error escape: pydantic's ``ValidationError``,
``UnicodeDecodeError`` and ``json`` errors are all mapped to one leaf here, so
a worker can catch exactly one type around untrusted bytes.

    ValueError
    └── PayloadError          bytes that are not a valid Baling message
        └── TopicError        a topic that is not one of ours, or not this message's
"""

from __future__ import annotations


class PayloadError(ValueError):
    """A message that does not follow the wire contract.

    Attributes:
        field: the dotted path of the offending field ("" for the whole payload).
        got: a short, printable rendering of what arrived.
        reason: a stable, metric-friendly reason code (e.g. ``"schema"``).
    """

    def __init__(
        self, message: str, *, field: str = "", got: str = "", reason: str = "invalid"
    ) -> None:
        super().__init__(message)
        self.field = field
        self.got = got
        self.reason = reason


class TopicError(PayloadError):
    """A topic outside the contract or one that contradicts its envelope."""
