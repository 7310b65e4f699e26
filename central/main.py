"""Assemble and run central: database, broker link, ingest workers, timers, HTTP.

:class:`Central` wires the parts from :class:`CentralSettings`; ``serve``
runs uvicorn in the calling thread until SIGINT/SIGTERM. ``baling central``
and ``baling up`` both use it.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from sqlmodel import Session, select

from central.api.deps import Services
from central.app import create_app
from central.audit.log import AuditLog, load_or_create_key
from central.complaints.service import ComplaintService
from central.db import make_engine, migrate
from central.fleet import twin
from central.fleet.broker_access import BrokerAccess, service_tls
from central.guidance.service import GuidanceService, load_or_create_secret
from central.ingest.presence import OfflineSweep
from central.ingest.worker import IngestWorker, make_ingest_link
from central.messaging.link import make_central_link
from central.messaging.live import Broadcaster
from central.messaging.outbound import Sender
from central.metrics import Metrics
from central.models import Operator
from central.operators.auth import create_operator
from central.ota.balena import BalenaFleet, connect
from central.ota.server import OtaServer
from central.ota.service import OtaService
from central.plates.service import PlateRules, PlateService
from central.police.beat import BeatRules
from central.police.lane import SosLane, make_sos_link
from central.police.rules import PoliceRules
from central.police.service import PoliceService
from central.police.sos import SosRules
from central.signals.service import SignalService
from central.timers import TimerWorker
from edge.bus import TlsFiles
from edge.clock import Clock, SystemClock
from provisioning.ca import FleetCA, private_dir
from provisioning.identity import (
    ingest_identity,
    link_identity,
    service_identities,
    sos_identity,
)

if TYPE_CHECKING:
    from central.settings import CentralSettings

logger = logging.getLogger(__name__)

COMMAND_KEY_FILE = "command-signing.key"


def bootstrap_admin(services: Services) -> tuple[str, str] | None:
    """Create the first operator if there is none; return its credentials.

    The password is also written to ``<data_dir>/admin-password.txt``
    (mode 0600) so the operator can find it again.
    """
    with Session(services.engine) as session:
        if session.exec(select(Operator)).first() is not None:
            return None
        password = secrets.token_urlsafe(12)
        create_operator(
            session,
            username="admin",
            password=password,
            role="admin",
            now=services.clock.now(),
        )
    path = services.settings.data_dir / "admin-password.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    logger.info("Created operator 'admin'; password in %s", path)
    return "admin", password


class Central:
    """One central process: API, publishing link, N ingest workers and the timers."""

    def __init__(
        self, settings: CentralSettings, *, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        private_dir(settings.data_dir)  # keys, database, CA: nobody else's
        engine = make_engine(settings.database_url)
        migrate(engine)
        protect_sqlite(settings.database_url)
        self.command_key = load_or_create_key(settings.data_dir, COMMAND_KEY_FILE)
        ca = load_or_create_ca(settings, now=self.clock.now())
        self.link = make_central_link(
            signer=self.command_key,
            worker_id=settings.worker_id,
            host=settings.broker_host,
            port=settings.broker_port,
            clock=self.clock,
            tls=broker_tls(settings, ca, link_identity(settings.worker_id)),
            max_packet=settings.broker_max_packet,
        )
        self.broker_access = BrokerAccess(
            engine=engine,
            ca=ca,
            host=settings.broker_host,
            port=settings.broker_port,
            tls_ca_file=settings.broker_ca_file,
            acl_file=settings.broker_acl_file,
            services=service_identities(settings.worker_id, settings.workers),
            crl_file=settings.data_dir / "ca" / "crl.pem",
        )
        audit = AuditLog(engine, load_or_create_key(settings.data_dir))
        broadcaster = Broadcaster()
        # What every service sends after its commit goes through one sender.
        sender = Sender(
            clock=self.clock, link=self.link, broadcaster=broadcaster, audit=audit
        )
        self.police = PoliceService(
            clock=self.clock, sender=sender, rules=police_rules(settings)
        )
        self.plates = PlateService(
            clock=self.clock,
            data_dir=settings.data_dir,
            issuers=lambda: [ca.intermediate, ca.root],
            sender=sender,
            rules=PlateRules(
                unsure_below=settings.plate_unsure_below,
                retention_days=settings.plate_retention_days,
                handheld_categories=frozenset(settings.plate_handheld_categories),
                radius_m=settings.plate_radius_m,
                repeat_window_s=settings.plate_alarm_window_s,
            ),
        )
        self.complaints = ComplaintService(clock=self.clock, sender=sender)
        self.ota = OtaService(
            clock=self.clock,
            data_dir=settings.data_dir,
            sender=sender,
            tick_s=settings.ota_tick_s,
            release_keys=settings.ota_release_keys,
            balena=balena_fleet(settings),
        )
        self.signals = SignalService(
            clock=self.clock,
            link=self.link,
            sender=sender,
            push_timeout_s=settings.signal_push_timeout_s,
        )
        self.guidance = GuidanceService(
            clock=self.clock,
            secret=load_or_create_secret(settings.data_dir),
            sender=sender,
        )
        self.services = Services(
            audit=audit,
            ca=ca,
            settings=settings,
            engine=engine,
            metrics=Metrics(),
            clock=self.clock,
            broadcaster=broadcaster,
            link=self.link,
            police=self.police,
            plates=self.plates,
            complaints=self.complaints,
            ota=self.ota,
            signals=self.signals,
            guidance=self.guidance,
        )
        partition = settings.partition()
        if partition is not None and settings.workers > 1:
            raise ValueError(
                "expected CENTRAL_WORKERS=1 with CENTRAL_INGEST_PARTITION "
                f"(one partition per process), got {settings.workers} workers"
            )
        shared = partition is None and (
            settings.workers > 1
            if settings.ingest_shared is None
            else settings.ingest_shared
        )
        self.workers = [
            IngestWorker(
                engine=engine,
                sink=self.services.sink(),
                bus=make_ingest_link(
                    worker_id=f"{settings.worker_id}-{i}",
                    host=settings.broker_host,
                    port=settings.broker_port,
                    inflight=settings.ingest_inflight,
                    presence=i == 0 and settings.ingest_presence,
                    shared=shared,
                    tls=broker_tls(
                        settings, ca, ingest_identity(settings.worker_id, i)
                    ),
                ),
                metrics=self.services.metrics,
                clock=self.clock,
                broadcaster=self.services.broadcaster,
                batch=settings.ingest_batch,
                flush_s=settings.ingest_flush_s,
                max_bytes=settings.max_payload_bytes,
                partition=partition,
            )
            for i in range(settings.workers)
        ]
        # The SOS lane: its own topic, link, thread and transaction per SOS,
        # so nothing bulk stands before it (central/police/lane.py).
        self.sos_lane: SosLane | None = None
        if settings.workers > 0 if settings.sos_lane is None else settings.sos_lane:
            self.sos_lane = SosLane(
                bus=make_sos_link(
                    client_id=sos_identity(settings.worker_id),
                    host=settings.broker_host,
                    port=settings.broker_port,
                    shared=partition is None and bool(settings.ingest_shared),
                    tls=broker_tls(settings, ca, sos_identity(settings.worker_id)),
                ),
                police=self.police,
                engine=engine,
                clock=self.clock,
                metrics=self.services.metrics,
                partition=partition,
            )
        # One process of a site runs the timers: the one that keeps presence.
        self.timers: TimerWorker | None = None
        if settings.ingest_presence:
            self.timers = TimerWorker(
                engine=engine,
                timers=[
                    self.police,
                    self.plates,
                    self.complaints,
                    self.ota,
                    self.signals,
                    self.guidance,
                    OfflineSweep(
                        clock=self.clock,
                        metrics=self.services.metrics,
                        broadcaster=broadcaster,
                        offline_after_s=settings.offline_after_s,
                    ),
                ],
            )
        self.app = create_app(self.services)
        self.ota_server: OtaServer | None = None

    def start(self) -> None:
        """Connect the link, republish every desired config, start ingest and timers."""
        self.link.start()
        with Session(self.services.engine) as session:
            published = twin.reconcile(session, self.link, force=True)
        logger.info("Published %d desired configurations", published)
        if self.sos_lane is not None:
            self.sos_lane.start()
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            if not worker.wait_ready(10):
                logger.warning("Ingest worker not subscribed yet; it keeps trying")
        if self.sos_lane is not None and not self.sos_lane.wait_ready(10):
            logger.warning("SOS lane not subscribed yet; it keeps trying")
        if self.timers is not None:
            self.timers.start()
        if self.settings.ingest_presence:  # one process of a site watches
            self.broker_access.start()
        self.ota_server = ota_server(self.settings)
        if self.ota_server is not None:
            self.ota_server.start()

    def stop(self) -> None:
        """Stop the timers, ingest and the link."""
        self.broker_access.stop()
        if self.timers is not None:
            self.timers.stop()
        if self.ota_server is not None:
            self.ota_server.stop()
        for worker in self.workers:
            worker.stop()
        if self.sos_lane is not None:
            self.sos_lane.stop()
        self.link.stop()
        self.services.engine.dispose()

    def serve(self) -> None:
        """Run HTTP and ingest until SIGINT/SIGTERM, then stop both cleanly.

        uvicorn runs in a thread so that the signal reaches us, not uvicorn
        (which re-raises it after its own shutdown and would skip ours).
        """
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        config = uvicorn.Config(
            self.app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_level="warning",
            **proxy_options(self.settings),
        )
        server = uvicorn.Server(config)
        web = threading.Thread(target=server.run, name="http", daemon=True)
        web.start()
        try:
            while not stop.wait(0.5) and web.is_alive():
                pass
        finally:
            server.should_exit = True
            web.join(timeout=10)
            self.stop()
            logger.info("Central stopped")


def balena_fleet(settings: CentralSettings) -> BalenaFleet | None:
    """The balena backend for rollouts, where one is configured."""
    if not settings.ota_balena_fleet:
        return None
    sdk = connect(settings.ota_balena_token, host=settings.ota_balena_host)
    return BalenaFleet(sdk, settings.ota_balena_fleet)


def police_rules(settings: CentralSettings) -> PoliceRules:
    """The police service's rules from central's settings."""
    return PoliceRules(
        sos=SosRules(
            radius_m=settings.police_sos_radius_m,
            repeat_s=settings.police_sos_repeat_s,
            escalate_s=settings.police_sos_escalate_s,
            delayed_s=settings.police_sos_delayed_s,
        ),
        beat=BeatRules(
            exit_fixes=settings.police_beat_exit_fixes,
            exit_s=settings.police_beat_exit_s,
            leader_after_s=settings.police_beat_leader_s,
            stationary_m=settings.police_stationary_m,
            stationary_s=settings.police_stationary_s,
        ),
        tz=settings.police_tz,
    )


def broker_tls(settings: CentralSettings, ca: FleetCA, name: str) -> TlsFiles | None:
    """The mutual-TLS files of central's connection ``name``, when configured.

    With ``broker_cert_file`` every connection presents that one certificate
    (only where the broker does not force client id = certificate name);
    otherwise each gets its own service identity, minted by central's CA.
    """
    if settings.broker_ca_file is None:
        return None
    if settings.broker_cert_file is not None:
        return TlsFiles(
            ca_file=settings.broker_ca_file,
            cert_file=settings.broker_cert_file,
            key_file=settings.broker_key_file,
        )
    return service_tls(
        ca,
        settings.data_dir / "broker-identities",
        name,
        ca_file=settings.broker_ca_file,
        now=datetime.now(UTC),
    )


def ota_server(settings: CentralSettings) -> OtaServer | None:
    """The mutual-TLS ``/ota`` listener, when ``ota_tls_port`` is set.

    Raises:
        ValueError: the port is set without the server certificate and key.
    """
    if not settings.ota_tls_port:
        return None
    if settings.ota_tls_cert_file is None or settings.ota_tls_key_file is None:
        raise ValueError(
            "expected CENTRAL_OTA_TLS_CERT_FILE and CENTRAL_OTA_TLS_KEY_FILE with "
            f"CENTRAL_OTA_TLS_PORT={settings.ota_tls_port}, got none"
        )
    ca_dir = settings.data_dir / "ca"
    ota_dir = settings.data_dir / "ota"
    ota_dir.mkdir(parents=True, exist_ok=True)
    return OtaServer(
        ota_dir,
        host=settings.http_host,
        port=settings.ota_tls_port,
        ca_file=ca_dir / "root.pem",
        cert_file=settings.ota_tls_cert_file,
        key_file=settings.ota_tls_key_file,
        crl_file=ca_dir / "crl.pem",
    )


def protect_sqlite(url: str) -> None:
    """Make a SQLite database file (and its WAL files) readable by us only."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return
    base = Path(url.removeprefix(prefix).split("?", 1)[0])
    for path in (base, *(base.with_name(base.name + s) for s in ("-wal", "-shm"))):
        if path.exists():
            path.chmod(0o600)


def load_or_create_ca(settings: CentralSettings, *, now: datetime) -> FleetCA:
    """The fleet CA under ``<data_dir>/ca``, made on first start."""
    directory = private_dir(settings.data_dir / "ca")
    passphrase = settings.ca_passphrase.encode() if settings.ca_passphrase else None
    if (directory / "issuing.key").exists():
        return FleetCA.load(directory, passphrase=passphrase)
    logger.info("Creating the fleet CA in %s", directory)
    return FleetCA.create(directory, now=now, passphrase=passphrase)


def default_sqlite_url(data_dir: Path) -> str:
    """The SQLite URL inside a data directory."""
    return f"sqlite:///{(data_dir / 'central.sqlite3').resolve()}"


def proxy_options(settings: CentralSettings) -> dict[str, Any]:
    """Uvicorn's proxy settings: trust X-Forwarded-* only from the named proxies.

    uvicorn's own default trusts 127.0.0.1, so any process on the host
    (a proxy passing the header on) could choose the client address that
    login back-off and the audit record (red team 10).
    """
    allowed = settings.forwarded_allow_ips.strip()
    if not allowed:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": allowed}
