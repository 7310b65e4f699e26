"""Central's services on a migrated database, the way the API tests build them.

One place for the block every API test wrote out: engine, migrations,
settings with a test secret, audit log, metrics, clock and live stream.
Domain services (police, plates, …) are added by the test that needs them,
each given the one :class:`Sender` over these parts (``sender(services)``),
as ``central.main`` gives every service the same one. Operators, devices and
the app itself are left to the tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.api.deps import Services
from central.audit.log import AuditLog
from central.db import make_engine, migrate
from central.messaging.live import Broadcaster
from central.messaging.outbound import Sender
from central.metrics import Metrics
from central.settings import CentralSettings
from edge import SystemClock

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from edge.clock import Clock

JWT_SECRET = "s" * 40  # long enough for the settings' check, never a real one


def central_services(
    url: str,
    data_dir: Path,
    *,
    clock: Clock | None = None,
    checkpoint_every: int = 100,
    settings: Mapping[str, Any] | None = None,
) -> Services:
    """Services on a freshly migrated database at ``url``, data under ``data_dir``.

    Args:
        url: The database URL (a fixture's SQLite file or PostgreSQL schema).
        data_dir: Central's data directory.
        clock: The services' clock; the system's when none is given.
        checkpoint_every: How many audit records go between signed checkpoints.
        settings: Central's settings beyond the URL, data directory and test
            secret (``{"open311_api_keys": [KEY]}``).

    Returns:
        The services, with no domain service and no broker link.
    """
    engine = make_engine(url)
    migrate(engine)
    values: dict[str, Any] = {
        "database_url": url,
        "jwt_secret": JWT_SECRET,
        "data_dir": data_dir,
        **(settings or {}),
    }
    return Services(
        audit=AuditLog(
            engine, Ed25519PrivateKey.generate(), checkpoint_every=checkpoint_every
        ),
        settings=CentralSettings(**values),
        engine=engine,
        metrics=Metrics(),
        clock=clock or SystemClock(),
        broadcaster=Broadcaster(),
    )


def sender(services: Services) -> Sender:
    """The sender a domain service is given: these services' link, stream and audit."""
    return Sender(
        clock=services.clock,
        link=services.link,
        broadcaster=services.broadcaster,
        audit=services.audit,
    )
