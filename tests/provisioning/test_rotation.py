"""Rotating the issuing CA under an offline root, on a real Mosquitto.

After ``issue_intermediate`` replaces central's issuing CA, certificates
from the old one still connect (the root signed both, and the old one keeps
signing a CRL — without one the broker refuses all it issued), new ones
connect, and a revoked old one stays out. The CRL is re-signed before it
lapses.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from baling.broker import Mosquitto, free_port
from central.db import make_engine, migrate
from central.fleet.broker_access import BrokerAccess
from edge.bus import PahoBus, TlsFiles
from provisioning.brokerconf import TlsListener, write_broker_config
from provisioning.ca import (
    FleetCA,
    Issued,
    issue_intermediate,
    key_pem,
    make_csr,
    new_key,
)

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime.now(UTC)
PHRASE = b"twelve chars or more"


def _issue(ca: FleetCA, name: str, folder: Path, *, server: bool = False) -> Issued:
    key = new_key()
    issued = ca.issue(
        make_csr(key, name),
        common_name=name,
        now=NOW,
        server=server,
        hosts=("127.0.0.1",) if server else (),
    )
    (folder / f"{name}.pem").write_bytes(issued.chain_pem)
    (folder / f"{name}.key").write_bytes(key_pem(key))
    return issued


@pytest.mark.mqtt
def test_old_certificates_survive_a_rotation_and_revocation_still_bites(
    tmp_path: Path,
) -> None:
    ca_dir = tmp_path / "ca"
    old = FleetCA.create(ca_dir, now=NOW, passphrase=PHRASE)
    _issue(old, "localhost", tmp_path, server=True)
    _issue(old, "kiosk-old", tmp_path)
    gone = _issue(old, "kiosk-gone", tmp_path)
    issue_intermediate(
        ca_dir, ca_dir, now=NOW, passphrase=PHRASE, issuing_passphrase=PHRASE
    )
    assert len(list((ca_dir / "previous").iterdir())) == 1
    new = FleetCA.load(ca_dir, passphrase=PHRASE)
    assert new.intermediate.subject != old.intermediate.subject
    _issue(new, "kiosk-new", tmp_path)
    crl = tmp_path / "crl.pem"
    crl.write_bytes(new.crl([(gone.serial, NOW)], now=NOW))
    assert crl.read_bytes().count(b"BEGIN X509 CRL") == 2
    port = free_port()
    conf = write_broker_config(
        tmp_path / "broker",
        TlsListener(
            port=port,
            ca_file=ca_dir / "root.pem",
            cert_file=tmp_path / "localhost.pem",
            key_file=tmp_path / "localhost.key",
            crl_file=crl,
            host="127.0.0.1",
        ),
    )
    broker = Mosquitto(data_dir=tmp_path / "broker", port=port, conf=conf)
    broker.start()
    try:
        for name, expected in (
            ("kiosk-old", True),
            ("kiosk-new", True),
            ("kiosk-gone", False),
        ):
            bus = PahoBus(
                client_id=name,
                host="127.0.0.1",
                port=port,
                tls=TlsFiles(
                    ca_file=ca_dir / "root.pem",
                    cert_file=tmp_path / f"{name}.pem",
                    key_file=tmp_path / f"{name}.key",
                ),
                clean_start=True,
                session_expiry=0,
            )
            bus.start()
            try:
                assert bus.wait_connected(3 if expected else 2) is expected, name
            finally:
                bus.stop()
    finally:
        broker.stop(kill=True)


def test_the_crl_is_re_signed_before_it_lapses(tmp_path: Path) -> None:
    ca = FleetCA.create(tmp_path / "ca", now=NOW)
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    engine = make_engine(url)
    migrate(engine)
    crl = tmp_path / "ca" / "crl.pem"
    crl.write_bytes(ca.crl([], now=NOW))
    access = BrokerAccess(
        engine=sa.create_engine(url),
        ca=ca,
        host="127.0.0.1",
        port=1,
        tls_ca_file=None,
        acl_file=None,
        services=(),
        crl_file=crl,
    )
    assert access.refresh_crl() is False  # fresh: left alone
    two_days_ago = time.time() - 2 * 86400
    os.utime(crl, (two_days_ago, two_days_ago))
    assert access.refresh_crl() is True
    assert crl.stat().st_mtime > two_days_ago + 86400
    engine.dispose()
