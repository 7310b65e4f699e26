"""What a technician does from a laptop: codes, retirements, replacements.

Each call logs in to central with the technician's own account and goes
through the same API (and the same audit) as the console. Printing is the
command line's; errors carry advice (:class:`EnrolError`).
"""

from __future__ import annotations

from typing import Any

from provisioning.enroll import call


class Technician:
    """A logged-in technician session against one central."""

    def __init__(self, central: str, user: str, password: str) -> None:
        self.base = central.rstrip("/") + "/api/v1"
        answer = call(
            f"{self.base}/auth/token", form={"username": user, "password": password}
        )
        self.token = str(answer["access_token"])

    def code(self, *, kind: str, site: str, ttl_h: float = 24.0) -> dict[str, Any]:
        """A one-time enrolment code for a node of ``kind`` at ``site``."""
        return call(
            f"{self.base}/enrolment/codes",
            {"kind": kind, "site": site, "ttl_h": ttl_h},
            token=self.token,
        )

    def retire(self, device_id: str) -> dict[str, Any]:
        """Revoke a node and stop taking its data."""
        return call(f"{self.base}/devices/{device_id}/retire", {}, token=self.token)

    def replace(self, old: str, new: str) -> dict[str, Any]:
        """Move a swapped node's place and configuration to its enrolled successor."""
        return call(
            f"{self.base}/devices/{old}/replace", {"new": new}, token=self.token
        )
