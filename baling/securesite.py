"""A secure single-machine site: central, a mutual-TLS Mosquitto, HTTP.

Central's fleet CA issues the broker's server certificate; nodes enrol over
HTTP and reach the broker only through mutual TLS, while central uses a
plain listener bound to 127.0.0.1. The enrolment tests and ``bench.enroll``
run on it; it is also the shape of a one-host deployment.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import uvicorn

from baling.broker import Mosquitto, free_port
from central.main import Central, default_sqlite_url
from central.settings import CentralSettings
from provisioning.brokerconf import TlsListener, write_broker_config
from provisioning.ca import key_pem, make_csr, new_key

if TYPE_CHECKING:
    from pathlib import Path


class SecureSite:
    """Start and stop the three parts together."""

    def __init__(self, root: Path, *, database_url: str | None = None) -> None:
        self.root = root
        tls_port, plain_port, self.http_port = free_port(), free_port(), free_port()
        self.settings = CentralSettings(
            database_url=database_url or default_sqlite_url(root),
            jwt_secret=_secret(),
            data_dir=root / "central",
            broker_port=plain_port,
            broker_tls_port=tls_port,
            http_port=self.http_port,
        )
        self.central = Central(self.settings)
        self.broker = Mosquitto(
            data_dir=root / "broker",
            port=plain_port,
            conf=self._broker_config(tls_port),
        )
        self._server: uvicorn.Server | None = None
        self._web: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Central's HTTP address."""
        return f"http://127.0.0.1:{self.http_port}"

    def _broker_config(self, tls_port: int) -> Path:
        ca = self.central.services.ca
        if ca is None:  # pragma: no cover - Central always makes one
            raise RuntimeError("expected central to have a fleet CA")
        now = datetime.now(UTC)
        certs = self.root / "broker-certs"
        certs.mkdir(parents=True, exist_ok=True)
        key = new_key()
        server = ca.issue(
            make_csr(key, "localhost"),
            common_name="localhost",
            now=now,
            server=True,
            hosts=("127.0.0.1",),
        )
        (certs / "server.pem").write_bytes(server.chain_pem)
        (certs / "server.key").write_bytes(key_pem(key))
        (certs / "ca.pem").write_bytes(ca.bundle_pem)
        crl = self.settings.data_dir / "ca" / "crl.pem"  # central rewrites it on retire
        if not crl.exists():
            crl.write_bytes(ca.crl([], now=now))
        listener = TlsListener(
            port=tls_port,
            ca_file=certs / "ca.pem",
            cert_file=certs / "server.pem",
            key_file=certs / "server.key",
            crl_file=crl,
            host="127.0.0.1",
        )
        return write_broker_config(
            self.root / "broker", listener, loopback_port=self.settings.broker_port
        )

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
