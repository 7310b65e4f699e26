"""The runtime every Baling node shares.

Settings, the MQTT link, the durable outbox, command handling, heartbeats and
the :class:`Agent` base. The wire contract lives in :mod:`edge.protocol`.
"""

from edge.agent import Agent, CommandHandler
from edge.bus import Backoff, Bus, PahoBus, Published, Received, TlsFiles, Will
from edge.clock import Clock, ManualClock, SystemClock
from edge.errors import (
    BusError,
    CommandError,
    EdgeError,
    HardwareError,
    OutboxError,
    OutboxFullError,
    SettingsError,
)
from edge.node import build_agent, run_agent
from edge.outbox import Entry, Outbox
from edge.protocol import PayloadError
from edge.settings import NodeSettings, load_settings

__all__ = [
    "Agent",
    "Backoff",
    "Bus",
    "BusError",
    "Clock",
    "CommandError",
    "CommandHandler",
    "EdgeError",
    "Entry",
    "HardwareError",
    "ManualClock",
    "NodeSettings",
    "Outbox",
    "OutboxError",
    "OutboxFullError",
    "PahoBus",
    "PayloadError",
    "Published",
    "Received",
    "SettingsError",
    "SystemClock",
    "TlsFiles",
    "Will",
    "build_agent",
    "load_settings",
    "run_agent",
]
