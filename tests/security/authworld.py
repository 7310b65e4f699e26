"""A central app on a real database with a clock the test moves (auth tests' own).

Not a conftest: the security folder's conftest belongs to another suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient
from sqlmodel import Session
from support.api import login
from support.central import central_services

from central.app import create_app
from central.operators.auth import create_operator
from edge.clock import ManualClock

if TYPE_CHECKING:
    from pathlib import Path

    from central.api.deps import Services

PASSWORD = "correct horse battery"
START = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


@dataclass
class World:
    """The app, its services and the clock."""

    services: Services
    clock: ManualClock
    client: TestClient

    def add(self, username: str, role: str, scope: list[str] | None = None) -> None:
        """Add an operator with :data:`PASSWORD`."""
        with Session(self.services.engine) as s:
            create_operator(
                s,
                username=username,
                password=PASSWORD,
                role=role,
                now=self.clock.now(),
                scope=scope,
            )

    def login(
        self, username: str, password: str = PASSWORD, client: TestClient | None = None
    ) -> dict[str, str]:
        """Log in and return the Authorization header."""
        return login(client or self.client, username, password)

    def audit_count(self) -> int:
        """How many records the audit chain holds."""
        return len(self.services.audit.search(limit=100000))


def build(db_url: str, tmp_path: Path) -> World:
    """A fresh app on ``db_url`` with an admin operator ``root``."""
    clock = ManualClock(START)
    services = central_services(db_url, tmp_path, clock=clock)
    world = World(
        services=services, clock=clock, client=TestClient(create_app(services))
    )
    world.add("root", "admin")
    return world
