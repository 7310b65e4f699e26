"""``release.json``: what an OTA release says about itself.

Central's release builder writes this file into every release archive and
the node's OTA client reads it from the slot it installed, so its field
values are part of the contract between them, like the topics. Building,
signing and installing releases are left to ``central.ota`` and
``edge.ota``; this module holds values only and does no I/O.
"""

from __future__ import annotations

from typing import Final

# "drill": a release built to fail its health check on purpose (fault drills:
# operators watch a rollout halt and the nodes roll back).
DRILL: Final = "fail-health"

__all__ = ["DRILL"]
