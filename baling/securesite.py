"""A secure single-machine site: central, a mutual-TLS Mosquitto, HTTP, OTA over mTLS.

Central's fleet CA issues the broker's server certificate; central mints
its own per-connection service identities (``central-api-w1``,
``central-ingest-w1-0``) and the broker forces client id = certificate
name. Nodes enrol over HTTP, and everything on the broker — nodes and
central — goes through mutual TLS. Central writes the CRL and the ACL; the
broker's owner here watches both files and signals Mosquitto to re-read
them (a site uses a systemd ``.path`` unit, deploy/site). ``/ota`` is served
only on a mutual-TLS listener. Keys are 0600 in 0700 directories. The
enrolment and security tests and ``bench.enroll`` run on it; it is also
the shape of a one-host deployment.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import uvicorn

from baling.broker import Mosquitto, free_port
from central.main import (
    Central,
    default_sqlite_url,
    load_or_create_ca,
    proxy_options,
)
from central.settings import CentralSettings
from provisioning.brokerconf import TlsListener, write_broker_config
from provisioning.ca import key_pem, make_csr, new_key, private_dir, write_atomically
from provisioning.identity import service_identities

if TYPE_CHECKING:
    from pathlib import Path

    from provisioning.ca import FleetCA


def tls_broker(
    settings: CentralSettings, root: Path, *, loopback_port: int | None = None
) -> Mosquitto:
    """A Mosquitto (not started) whose mutual-TLS listener trusts the fleet CA.

    Issues the broker's server certificate (``<root>/certs/server.pem``,
    also the OTA listener's) from central's CA, keeps the CRL where central
    rewrites it on retirement, and lets central's service identities in.
    ``loopback_port`` adds a plain 127.0.0.1 listener (``baling up`` keeps
    one for the demo).
    """
    certs = private_dir(root / "certs")
    now = datetime.now(UTC)
    ca = load_or_create_ca(settings, now=now)
    private_dir(settings.data_dir)
    _issue(ca, "localhost", certs / "server", server=True)
    write_atomically(certs / "ca.pem", ca.bundle_pem)
    crl = settings.data_dir / "ca" / "crl.pem"
    if not crl.exists():
        write_atomically(crl, ca.crl([], now=now))
    listener = TlsListener(
        port=settings.broker_tls_port,
        ca_file=certs / "ca.pem",
        cert_file=certs / "server.pem",
        key_file=certs / "server.key",
        crl_file=crl,
        host=settings.broker_public_host,
    )
    conf = write_broker_config(
        root / "broker",
        listener,
        services=service_identities(settings.worker_id, settings.workers),
        loopback_port=loopback_port,
    )
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
    write_atomically(stem.with_suffix(".pem"), issued.chain_pem)
    write_atomically(stem.with_suffix(".key"), key_pem(key), secret=True)


class SecureSite:
    """Start and stop the three parts together; central too speaks mutual TLS."""

    def __init__(self, root: Path, *, database_url: str | None = None) -> None:
        self.root = root
        tls_port, self.http_port = free_port(), free_port()
        self.ota_port = free_port()
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
                "broker_acl_file": root / "broker" / "acl",
                "ota_tls_port": self.ota_port,
                "ota_tls_cert_file": certs / "server.pem",
                "ota_tls_key_file": certs / "server.key",
                "ota_plain_http": False,
            }
        )
        self.central = Central(self.settings)
        self._server: uvicorn.Server | None = None
        self._web: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Central's HTTP address."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ota_url(self) -> str:
        """Where nodes fetch updates with their fleet certificate."""
        return f"https://127.0.0.1:{self.ota_port}/ota"

    def start(self) -> None:
        """Broker (watching the CRL and ACL), then central, then HTTP."""
        self.broker.start()
        self.broker.watch(
            self.settings.data_dir / "ca" / "crl.pem", self.root / "broker" / "acl"
        )
        self.central.start()
        config = uvicorn.Config(
            self.central.app,
            port=self.http_port,
            log_level="warning",
            **proxy_options(self.central.settings),
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
