"""Enrolled nodes for tests of central's kiosk API: a key, a certificate, tokens.

Central serves ``/api/v1/kiosk/*`` only to enrolled kiosks, each request
signed with the kiosk's fleet certificate. :func:`enrol_node` enrols a node
the real way (a code, a CSR, :func:`central.fleet.enrolment.enrol`), so its
device and certificate rows are what enrolment writes, and writes the
node's files when asked (``node.key``, ``node.pem``: what a kiosk's
``key_file``/``cert_file`` name). :meth:`NodeCredential.headers` signs one
request for a ``TestClient``; a running kiosk agent signs its own. Starting
central and the broker is left to the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from central.fleet import enrolment
from edge.protocol.node_token import SCHEME, chain_from_pem, sign_request
from provisioning.ca import key_pem, make_csr, new_key, write_atomically

if TYPE_CHECKING:
    from pathlib import Path

    import sqlalchemy as sa
    from cryptography.hazmat.primitives.asymmetric import ec

    from provisioning.ca import FleetCA


@dataclass(frozen=True)
class NodeCredential:
    """An enrolled node's key and certificate chain, and where its files are."""

    device_id: str
    key: ec.EllipticCurvePrivateKey
    chain_pem: bytes
    serial: int
    cert_file: Path | None = None
    key_file: Path | None = None

    def token(
        self,
        method: str,
        path: str,
        *,
        now: datetime | None = None,
        lifetime_s: int = 60,
    ) -> str:
        """A request token for ``method`` on ``path`` (no query)."""
        return sign_request(
            key=self.key,
            chain=chain_from_pem(self.chain_pem),
            device_id=self.device_id,
            method=method,
            path=path.split("?", 1)[0],
            now=now or datetime.now(UTC),
            lifetime_s=lifetime_s,
        )

    def headers(
        self, method: str, path: str, *, now: datetime | None = None
    ) -> dict[str, str]:
        """``{"Authorization": "Node …"}`` for one request."""
        return {"Authorization": f"{SCHEME} {self.token(method, path, now=now)}"}


def enrol_node(
    engine: sa.Engine,
    ca: FleetCA,
    *,
    device_id: str,
    kind: str = "kiosk",
    site: str = "",
    now: datetime | None = None,
    directory: Path | None = None,
) -> NodeCredential:
    """Enrol ``device_id`` as a ``kind`` at ``site``, as a technician's code would.

    Args:
        engine: Central's database.
        ca: Central's fleet CA.
        device_id: The node's id (not registered yet).
        kind: Its kind.
        site: Its district.
        now: Enrolment time (central's clock); the wall clock when not given.
        directory: Where to write ``node.key`` (0600) and ``node.pem``.

    Returns:
        The node's credential.
    """
    at = now or datetime.now(UTC)
    key = new_key()
    with Session(engine) as session:
        code, _row = enrolment.create_code(
            session,
            kind=kind,
            site=site,
            created_by="test",
            now=at,
            device_id=device_id,
        )
        done = enrolment.enrol(
            session,
            ca,
            code=code,
            csr_pem=make_csr(key, device_id),
            client_time=at,
            now=at,
        )
    cert_file = key_file = None
    if directory is not None:
        key_file, cert_file = directory / "node.key", directory / "node.pem"
        write_atomically(key_file, key_pem(key), secret=True)
        write_atomically(cert_file, done.issued.chain_pem)
    return NodeCredential(
        device_id=device_id,
        key=key,
        chain_pem=done.issued.chain_pem,
        serial=done.issued.serial,
        cert_file=cert_file,
        key_file=key_file,
    )
