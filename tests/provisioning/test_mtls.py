"""Broker security with a real Mosquitto: mutual TLS, per-node topic rights, CRL."""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from baling.broker import Mosquitto, free_port
from edge import PahoBus, Received, TlsFiles
from provisioning.brokerconf import TlsListener, write_broker_config
from provisioning.ca import FleetCA, key_pem, make_csr, new_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.mqtt
NOW = datetime.now(UTC)


@dataclass
class Pki:
    ca: FleetCA
    root: Path
    dir: Path
    serials: dict[str, int]

    def identity(self, name: str, ca: FleetCA | None = None) -> TlsFiles:
        key = new_key()
        issuer = ca or self.ca
        sign = issuer.issue_service if name.startswith("central") else issuer.issue
        issued = sign(make_csr(key, name), common_name=name, now=NOW)
        self.serials[name] = issued.serial
        (self.dir / f"{name}.pem").write_bytes(issued.chain_pem)
        (self.dir / f"{name}.key").write_bytes(key_pem(key))
        return TlsFiles(
            ca_file=self.root,
            cert_file=self.dir / f"{name}.pem",
            key_file=self.dir / f"{name}.key",
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = FleetCA.create(tmp_path / "ca", now=NOW, passphrase=b"offline root")
    assert FleetCA.load(tmp_path / "ca", passphrase=b"offline root").root == ca.root
    out = tmp_path / "certs"
    out.mkdir()
    key = new_key()
    server = ca.issue(
        make_csr(key, "localhost"),
        common_name="localhost",
        now=NOW,
        server=True,
        hosts=("127.0.0.1",),
    )
    (out / "server.pem").write_bytes(server.chain_pem)
    (out / "server.key").write_bytes(key_pem(key))
    (out / "crl.pem").write_bytes(ca.crl([], now=NOW))
    return Pki(ca=ca, root=tmp_path / "ca" / "root.pem", dir=out, serials={})


@pytest.fixture
def tls_broker(pki: Pki, tmp_path: Path) -> Iterator[Mosquitto]:
    port = free_port()
    listener = TlsListener(
        port=port,
        ca_file=pki.root,
        cert_file=pki.dir / "server.pem",
        key_file=pki.dir / "server.key",
        crl_file=pki.dir / "crl.pem",
        host="127.0.0.1",
    )
    conf = write_broker_config(tmp_path / "broker", listener)
    broker = Mosquitto(data_dir=tmp_path / "broker", port=port, conf=conf)
    broker.start()
    yield broker
    broker.stop(kill=True)


def link(port: int, name: str, tls: TlsFiles | None, *filters: str) -> PahoBus:
    bus = PahoBus(
        client_id=name,
        host="127.0.0.1",
        port=port,
        tls=tls,
        subscriptions=[(f, 1) for f in filters],
        clean_start=True,
        session_expiry=0,
    )
    bus.start()
    return bus


def received(bus: PahoBus, topic: str, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = bus.inbox.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(item, Received) and item.topic == topic:
            return True
    return False


def test_enrolled_node_is_confined_to_its_subtree(
    pki: Pki, tls_broker: Mosquitto
) -> None:
    central = link(tls_broker.port, "central", pki.identity("central"), "bl/v1/#")
    node = link(
        tls_broker.port,
        "sim-1",
        pki.identity("sim-1"),
        "bl/v1/sim-1/cmd/+",
        "bl/v1/sim-2/cmd/+",
    )
    try:
        assert central.wait_subscribed(5)
        assert node.wait_subscribed(5)
        node.publish("bl/v1/sim-1/event/tick", b"mine")
        assert received(central, "bl/v1/sim-1/event/tick")
        node.publish("bl/v1/sim-2/event/tick", b"forged")
        assert not received(central, "bl/v1/sim-2/event/tick", timeout=1.5)
        central.publish("bl/v1/sim-2/cmd/open", b"not for sim-1")
        assert not received(node, "bl/v1/sim-2/cmd/open", timeout=1.5)
        central.publish("bl/v1/sim-1/cmd/ping", b"for sim-1")
        assert received(node, "bl/v1/sim-1/cmd/ping")
    finally:
        node.stop()
        central.stop()


def test_strangers_are_refused(pki: Pki, tls_broker: Mosquitto, tmp_path: Path) -> None:
    other = FleetCA.create(tmp_path / "other-ca", now=NOW)
    attempts = {
        "no certificate": TlsFiles(ca_file=pki.root),
        "another CA": pki.identity("sim-3", ca=other),
    }
    for what, tls in attempts.items():
        bus = link(tls_broker.port, "intruder", tls)
        try:
            assert not bus.wait_connected(2), f"{what} was let in"
        finally:
            bus.stop()
    plain = link(tls_broker.port, "plain", None)
    try:
        assert not plain.wait_connected(2), "a plain TCP client was let in"
    finally:
        plain.stop()


def test_revoked_node_is_refused_after_the_crl_is_reloaded(
    pki: Pki, tls_broker: Mosquitto
) -> None:
    retired, kept = pki.identity("sim-1"), pki.identity("sim-2")
    (pki.dir / "crl.pem").write_bytes(
        pki.ca.crl([(pki.serials["sim-1"], NOW)], now=NOW)
    )
    tls_broker.restart()
    gone = link(tls_broker.port, "sim-1", retired)
    still = link(tls_broker.port, "sim-2", kept)
    try:
        assert still.wait_connected(5)
        assert not gone.wait_connected(2)
    finally:
        gone.stop()
        still.stop()
