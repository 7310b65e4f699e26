"""A secure single-machine site: central, a mutual-TLS Mosquitto, HTTP.

Central's fleet CA issues the broker's server certificate and central's own
client certificate (CN ``central``); nodes enrol over HTTP, and everything
on the broker — nodes and central — goes through mutual TLS. The enrolment
tests and ``bench.enroll`` run on it; it is also the shape of a one-host
deployment.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import uvicorn

from baling.broker import Mosquitto, free_port
from central.main import Central, default_sqlite_url, load_or_create_ca
from central.settings import CentralSettings
from provisioning.brokerconf import CENTRAL_IDENTITY, TlsListener, write_broker_config
from provisioning.ca import key_pem, make_csr, new_key

if TYPE_CHECKING:
    from pathlib import Path

    from provisioning.ca import FleetCA


def tls_broker(
    settings: CentralSettings, root: Path, *, loopback_port: int | None = None
) -> Mosquitto:
    """A Mosquitto (not started) whose mutual-TLS listener trusts the fleet CA.

    Issues the broker's server certificate and central's client certificate
    (``<root>/certs/central.pem``) from central's CA, and keeps the CRL where
    central rewrites it on retirement. ``loopback_port`` adds a plain
    127.0.0.1 listener (``baling up`` keeps one for the demo).
    """
    certs = root / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca = load_or_create_ca(settings, now=now)
    _issue(ca, "localhost", certs / "server", server=True)
    _issue(ca, CENTRAL_IDENTITY, certs / "central", server=False)
    (certs / "ca.pem").write_bytes(ca.bundle_pem)
    crl = settings.data_dir / "ca" / "crl.pem"
    if not crl.exists():
        crl.write_bytes(ca.crl([], now=now))
    listener = TlsListener(
        port=settings.broker_tls_port,
        ca_file=certs / "ca.pem",
        cert_file=certs / "server.pem",
        key_file=certs / "server.key",
        crl_file=crl,
        host=settings.broker_public_host,
    )
    conf = write_broker_config(root / "broker", listener, loopback_port=loopback_port)
    port = loopback_port or settings.broker_tls_port
    return Mosquitto(data_dir=root / "broker", port=port, conf=conf)


def _issue(ca: FleetCA, name: str, stem: Path, *, server: bool) -> None:
    key = new_key()
    hosts = ("127.0.0.1",) if server else ()
    issued = ca.issue(
        make_csr(key, name),
        common_name=name,
        now=datetime.now(UTC),
        server=server,
        hosts=hosts,
    )
    stem.with_suffix(".pem").write_bytes(issued.chain_pem)
    stem.with_suffix(".key").write_bytes(key_pem(key))


class SecureSite:
    """Start and stop the three parts together; central too speaks mutual TLS."""

    def __init__(self, root: Path, *, database_url: str | None = None) -> None:
        self.root = root
        tls_port, self.http_port = free_port(), free_port()
        base = CentralSettings(
            database_url=database_url or default_sqlite_url(root),
            jwt_secret=_secret(),
            data_dir=root / "central",
            broker_port=tls_port,
            broker_tls_port=tls_port,
            http_port=self.http_port,
            ota_release_keys=root / "ota-release-keys",  # a demo signs releases here
        )
        self.broker = tls_broker(base, root)
        certs = root / "certs"
        self.settings = base.model_copy(
            update={
                "broker_ca_file": certs / "ca.pem",
                "broker_cert_file": certs / "central.pem",
                "broker_key_file": certs / "central.key",
            }
        )
        self.central = Central(self.settings)
        self._server: uvicorn.Server | None = None
        self._web: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Central's HTTP address."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        """Broker, then central's links and workers, then HTTP."""
        self.broker.start()
        self.central.start()
        config = uvicorn.Config(
            self.central.app, port=self.http_port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._web = threading.Thread(target=self._server.run, daemon=True)
        self._web.start()
        while not self._server.started and self._web.is_alive():
            time.sleep(0.05)

    def stop(self) -> None:
        """Everything, in reverse."""
        if self._server is not None and self._web is not None:
            self._server.should_exit = True
            self._web.join(10)
        self.central.stop()
        self.broker.stop(kill=True)


def _secret() -> str:
    import secrets  # noqa: PLC0415

    return secrets.token_urlsafe(48)
