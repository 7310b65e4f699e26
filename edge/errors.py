"""The edge runtime's exception tree.

    EdgeError
    ├── BusError                    the MQTT link could not do what was asked
    ├── OutboxError                 the durable outbox
    │   └── OutboxFullError         the disk budget is spent on events
    ├── CommandError                a command refused, with the reason sent back
    ├── SettingsError (ValueError)  a settings file or value that cannot be used
    └── HardwareError               a device that does not answer as it should

Payloads that break the wire contract raise ``edge.protocol.PayloadError``
(a ``ValueError``), which is re-exported from ``edge``.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Root of every error the edge runtime raises on purpose."""


class BusError(EdgeError):
    """The MQTT link failed or refused an operation."""


class OutboxError(EdgeError):
    """The durable outbox could not store or read an entry."""


class OutboxFullError(OutboxError):
    """The outbox's disk budget is full of events; nothing more can be kept."""


class CommandError(EdgeError):
    """A command that the node refuses; the message is sent back to central."""


class SettingsError(EdgeError, ValueError):
    """Settings that cannot be used."""


class HardwareError(EdgeError):
    """A device that does not answer as its protocol says it should."""
