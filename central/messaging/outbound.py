"""What a committed batch sends, and the one place that sends it.

Services that act on events inside the ingest transaction (police, plates,
complaints, OTA) collect what must go out — signed commands to nodes, live
updates for the consoles, audit records — in an :class:`Outbound`, and
:meth:`Sender.deliver` sends it only after the commit. A service is given
its :class:`Sender`; nothing is decided here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from central.messaging.link import PacketTooLargeError

if TYPE_CHECKING:
    from central.audit.log import AuditLog
    from central.messaging.link import CentralLink
    from central.messaging.live import Broadcaster
    from edge.clock import Clock

logger = logging.getLogger(__name__)


@dataclass
class Outbound:
    """What a committed batch sends: commands, console updates, audit records."""

    commands: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    live: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Outbound) -> None:
        """Add another outbound's items after this one's."""
        self.commands += other.commands
        self.live += other.live
        self.audit += other.audit


class Sender:
    """Audit, tell the nodes, update the consoles: what a service sends after a commit.

    A collaborator handed to a service (``PoliceService(sender=...)``), never
    a base class to inherit from.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        link: CentralLink | None = None,
        broadcaster: Broadcaster | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        """Build a sender; a missing link, broadcaster or audit log is skipped.

        Args:
            clock: stamps the audit records.
            link: the broker link commands go out on.
            broadcaster: the consoles' live stream.
            audit: the audit log.
        """
        self.clock = clock
        self.link = link
        self.broadcaster = broadcaster
        self.audit = audit

    def deliver(self, out: Outbound) -> None:
        """Audit first, then send and broadcast (after the commit)."""
        now = self.clock.now()
        if self.audit is not None:
            for record in out.audit:
                self.audit.append(now=now, **record)
        if self.link is not None:
            for name, device, args in out.commands:
                try:
                    self.link.send(device, name, args)
                except PacketTooLargeError:
                    # Refused, never queued: one oversize command must not
                    # take the link or the worker down, nor hold back the rest.
                    logger.exception("Command %s to %s not sent", name, device)
        if self.broadcaster is not None:
            for item in out.live:
                self.broadcaster.publish(item)
