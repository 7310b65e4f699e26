"""Central's services on a migrated database, the way the API tests build them.

One place for the block every API test wrote out: engine, migrations,
settings with a test secret, audit log, metrics, clock and live stream.
Domain services (police, plates, …) are added by the test that needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.api.deps import Services
from central.audit.log import AuditLog
from central.db import make_engine, migrate
from central.messaging.live import Broadcaster
from central.metrics import Metrics
from central.settings import CentralSettings
from edge import SystemClock

if TYPE_CHECKING:
    from pathlib import Path

    from edge.clock import Clock


def central_services(
    url: str, data_dir: Path, *, clock: Clock | None = None
) -> Services:
    """Services on a freshly migrated database at ``url``, data under ``data_dir``."""
    engine = make_engine(url)
    migrate(engine)
    return Services(
        audit=AuditLog(engine, Ed25519PrivateKey.generate()),
        settings=CentralSettings(
            database_url=url, jwt_secret="s" * 40, data_dir=data_dir
        ),
        engine=engine,
        metrics=Metrics(),
        clock=clock or SystemClock(),
        broadcaster=Broadcaster(),
    )
