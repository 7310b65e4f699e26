"""A real secured site to attack: central, mutual-TLS Mosquitto, HTTP, OTA over mTLS.

``running_site`` starts :class:`baling.securesite.SecureSite` (SQLite in
the test's directory) and hands back a :class:`Site` with helpers: ``login``
makes an operator of a role and returns its ``Authorization`` header,
``enrol`` runs a real enrolment (code from the API, CSR, certificate) and
returns the node's files, and ``bus`` connects a client with a node's (or
any) certificate to the real broker. Not a conftest (a second module named
``conftest`` breaks ``mypy .``); a test module makes its fixture with::

    @pytest.fixture
    def secure_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
        with running_site(tmp_path, sqlite_url) as site:
            yield site
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi.testclient import TestClient
from sqlmodel import Session
from support.api import login

from baling.securesite import SecureSite
from central.operators.auth import create_operator
from edge.bus import PahoBus, TlsFiles
from provisioning.enroll import enroll

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from central.main import Central

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True, slots=True)
class Node:
    """An enrolled node's identity and files."""

    device_id: str
    data_dir: Path
    config: Path
    tls: TlsFiles


@dataclass
class Site:
    """A started secured site and ways to act on it."""

    secure: SecureSite
    client: TestClient
    root: Path
    buses: list[PahoBus] = field(default_factory=list)

    @property
    def central(self) -> Central:
        """The central process."""
        return self.secure.central

    @property
    def broker_port(self) -> int:
        """The mutual-TLS listener's port."""
        return self.secure.settings.broker_tls_port

    @property
    def ca_file(self) -> Path:
        """The fleet root nodes trust."""
        return self.root / "certs" / "ca.pem"

    def login(self, role: str, username: str | None = None) -> dict[str, str]:
        """Make an operator with ``role``; return its bearer header."""
        name = username or f"{role}-{secrets.token_hex(3)}"
        with Session(self.central.services.engine) as session:
            create_operator(
                session,
                username=name,
                password=PASSWORD,
                role=role,
                now=datetime.now(UTC),
            )
        return login(self.client, name, PASSWORD)

    def enrol(self, kind: str = "sim", *, site: str = "", **extra: Any) -> Node:
        """Enrol a node of ``kind`` the way a technician does; return its files."""
        made = self.client.post(
            "/api/v1/enrolment/codes",
            headers=self.login("technician"),
            json={"kind": kind, "site": site, **extra},
        )
        assert made.status_code == 201, made.text
        body = made.json()
        data_dir = self.root / "nodes" / body["device_id"]
        result = enroll(
            self.secure.url,
            body["code"],
            data_dir,
            say=lambda _m: None,
            check_broker=False,
        )
        return Node(
            device_id=result.device_id,
            data_dir=data_dir,
            config=result.config,
            tls=TlsFiles(
                ca_file=data_dir / "ca.pem",
                cert_file=data_dir / "node.pem",
                key_file=data_dir / "node.key",
            ),
        )

    def bus(
        self,
        tls: TlsFiles | None,
        client_id: str,
        *filters: str,
        clean_start: bool = True,
    ) -> PahoBus:
        """A started client on the mutual-TLS listener (stopped after the test)."""
        bus = PahoBus(
            client_id=client_id,
            host="127.0.0.1",
            port=self.broker_port,
            tls=tls,
            subscriptions=[(f, 1) for f in filters],
            clean_start=clean_start,
            session_expiry=0 if clean_start else 3600,
        )
        bus.start()
        self.buses.append(bus)
        return bus


@contextlib.contextmanager
def running_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    """A started secured site on SQLite; everything stopped afterwards."""
    secure = SecureSite(tmp_path, database_url=sqlite_url)
    secure.start()
    site = Site(secure=secure, client=TestClient(secure.central.app), root=tmp_path)
    try:
        yield site
    finally:
        for bus in site.buses:
            bus.stop()
        secure.stop()
