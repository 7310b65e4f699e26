"""Revocation that takes effect, on the real broker (issue 16, finding 15).

A node is connected and subscribed when a technician retires (or replaces)
it: within seconds the broker ends its session and refuses its reconnects,
with no broker restart and nobody reloading anything by hand. Its
neighbours stay connected.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from siteworld import Site, running_site

from baling.broker import free_port
from baling.securesite import tls_broker
from central.fleet.broker_access import BrokerAccess
from central.main import load_or_create_ca
from central.settings import CentralSettings
from edge.bus import LinkDown, PahoBus, TlsFiles
from provisioning.ca import key_pem, make_csr, new_key, write_atomically

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def secure_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_url) as site:
        yield site


pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
NOW = datetime.now(UTC)


def _gone_within(bus: PahoBus, seconds: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if not bus.connected:
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def test_a_retired_node_is_ejected_and_refused_within_seconds(
    secure_site: Site,
) -> None:
    site = secure_site
    retired, neighbour = site.enrol("sim"), site.enrol("sim")
    node = site.bus(retired.tls, retired.device_id, f"bl/v1/{retired.device_id}/cmd/+")
    other = site.bus(neighbour.tls, neighbour.device_id)
    assert node.wait_connected(10)
    assert other.wait_connected(10)
    assert site.secure.broker.proc is not None
    pid = site.secure.broker.proc.pid
    answer = site.client.post(
        f"/api/v1/devices/{retired.device_id}/retire", headers=site.login("admin")
    )
    assert answer.status_code == 200, answer.text
    took = _gone_within(node, 6)
    assert took is not None, "the retired node is still connected"
    # PahoBus keeps reconnecting; none may succeed from now on
    stays_out_until = time.monotonic() + 12
    while time.monotonic() < stays_out_until:
        assert not node.connected, "the retired node got back in"
        time.sleep(0.1)
    fresh = site.bus(retired.tls, retired.device_id)
    assert not fresh.wait_connected(3)
    assert other.connected  # nobody else was thrown off
    assert site.secure.broker.proc is not None
    assert site.secure.broker.proc.pid == pid  # reloaded, never restarted


def test_a_replaced_node_is_ejected_and_its_successor_connects(
    secure_site: Site,
) -> None:
    site = secure_site
    old, new = site.enrol("sim", site="lukou"), site.enrol("sim")
    node = site.bus(old.tls, old.device_id)
    assert node.wait_connected(10)
    answer = site.client.post(
        f"/api/v1/devices/{old.device_id}/replace",
        headers=site.login("admin"),
        json={"new": new.device_id},
    )
    assert answer.status_code == 200, answer.text
    assert _gone_within(node, 6) is not None
    time.sleep(9)  # past the ejection window: the CRL, not the kicks, keeps it out
    assert not node.connected
    successor = site.bus(new.tls, new.device_id)
    assert successor.wait_connected(10)


def test_central_on_the_loopback_listener_ejects_a_tls_node(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The site shape (deploy/site): central on 127.0.0.1 without a certificate."""
    settings = CentralSettings(
        database_url=sqlite_url,
        jwt_secret="x" * 40,
        data_dir=tmp_path / "central",
        broker_tls_port=free_port(),
    )
    loopback = free_port()
    broker = tls_broker(settings, tmp_path, loopback_port=loopback)
    broker.start()
    try:
        ca = load_or_create_ca(settings, now=datetime.now(UTC))
        key = new_key()
        issued = ca.issue(make_csr(key, "kiosk-7"), common_name="kiosk-7", now=NOW)
        write_atomically(tmp_path / "n.pem", issued.chain_pem)
        write_atomically(tmp_path / "n.key", key_pem(key), secret=True)
        node = PahoBus(
            client_id="kiosk-7",
            host="127.0.0.1",
            port=settings.broker_tls_port,
            tls=TlsFiles(
                ca_file=tmp_path / "certs" / "ca.pem",
                cert_file=tmp_path / "n.pem",
                key_file=tmp_path / "n.key",
            ),
            clean_start=False,
            session_expiry=3600,
        )
        node.start()
        try:
            assert node.wait_connected(10)
            access = BrokerAccess(
                engine=sa.create_engine(sqlite_url),
                ca=ca,
                host="127.0.0.1",
                port=loopback,
                tls_ca_file=None,
                acl_file=None,
                services=(),
                eject_s=1.0,
            )
            access.eject("kiosk-7").join(10)
            items = []
            while not node.inbox.empty():
                items.append(node.inbox.get())
            assert any(isinstance(i, LinkDown) for i in items)  # taken over
        finally:
            node.stop()
    finally:
        broker.stop(kill=True)
