"""Identities bound to certificates, attacked on a real site (issue 16, 1 and 3).

The attacker holds one enrolled node (its key and certificate) or a
technician account. It tries to become central by enrolment, and to take
central's MQTT sessions by client id while another node's events flow.
"""

from __future__ import annotations

import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from siteworld import Site, running_site
from sqlmodel import Session

from central.fleet import enrolment, registry
from central.models import Device, EnrolmentCode
from edge.protocol import encode, make, topics
from provisioning.ca import CAError, FleetCA, make_csr, new_key
from provisioning.codes import code_hash, new_code
from provisioning.enroll import EnrolError, enroll
from provisioning.identity import (
    IdentityError,
    check_node_identity,
    ingest_identity,
    link_identity,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from edge.bus import TlsFiles

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def secure_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_url) as site:
        yield site


@pytest.mark.parametrize(
    "name",
    ["central", "central-1", "central-ingest-w1-0", "Central", "svc-ota", "$sys"],
)
def test_service_names_are_never_node_names(name: str) -> None:
    with pytest.raises(IdentityError, match="reserved service name"):
        check_node_identity(name)


@pytest.mark.parametrize("name", ["a+b", "a#", "a/b", "", "x" * 65, "UPPER"])
def test_wildcards_and_odd_names_are_refused(name: str) -> None:
    with pytest.raises(IdentityError, match=r"expected a node id of \[a-z0-9_-\]"):
        check_node_identity(name)


def test_the_ca_mints_service_identities_only_through_its_service_path(
    tmp_path: Path,
) -> None:
    ca = FleetCA.create(tmp_path / "ca", now=NOW)
    with pytest.raises(CAError, match="reserved service name"):
        ca.issue(make_csr(new_key(), "central"), common_name="central", now=NOW)
    with pytest.raises(CAError, match="expected a service identity"):
        ca.issue_service(make_csr(new_key(), "kiosk-1"), common_name="kiosk-1", now=NOW)
    service = ca.issue_service(
        make_csr(new_key(), "central-api-w1"), common_name="central-api-w1", now=NOW
    )
    node = ca.issue(make_csr(new_key(), "kiosk-1"), common_name="kiosk-1", now=NOW)
    from cryptography import x509  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    def unit(pem: bytes) -> str:
        cert = x509.load_pem_x509_certificate(pem)
        attrs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        return str(attrs[0].value)

    assert unit(service.pem) == "service"
    assert unit(node.pem) == "node"


@pytest.mark.parametrize("name", ["central", "central-api-w1", "svc-x"])
def test_a_technician_cannot_order_a_code_for_a_service_name(
    secure_site: Site, name: str
) -> None:
    answer = secure_site.client.post(
        "/api/v1/enrolment/codes",
        headers=secure_site.login("technician"),
        json={"kind": "sim", "device_id": name},
    )
    assert answer.status_code == 422, answer.text
    assert "reserved service name" in answer.text
    with Session(secure_site.central.services.engine) as session:
        assert session.get(EnrolmentCode, code_hash("K7QP-M2XD")) is None
        with pytest.raises(IdentityError, match="reserved service name"):
            enrolment.create_code(
                session, kind="sim", site="", created_by="x", now=NOW, device_id=name
            )


def test_a_code_that_names_central_cannot_mint_central(
    secure_site: Site, tmp_path: Path
) -> None:
    # a code row from before the check (or written behind the API's back)
    code = new_code()
    now = datetime.now(UTC)
    with Session(secure_site.central.services.engine) as session:
        session.add(
            EnrolmentCode(
                code_hash=code_hash(code),
                device_id="central",
                kind="sim",
                site="",
                created_by="attacker",
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
        session.commit()
    with pytest.raises(EnrolError, match="reserved service name"):
        enroll(
            secure_site.secure.url,
            code,
            tmp_path / "fake-central",
            say=lambda _m: None,
            check_broker=False,
        )
    assert not (tmp_path / "fake-central" / "node.pem").exists()
    with Session(secure_site.central.services.engine) as session:
        assert session.get(Device, "central") is None


def _publisher(
    port: int, tls: TlsFiles, device: str
) -> tuple[mqtt.Client, threading.Event]:
    up = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5
    )
    client.tls_set(
        ca_certs=str(tls.ca_file),
        certfile=str(tls.cert_file),
        keyfile=str(tls.key_file),
        cert_reqs=ssl.CERT_REQUIRED,
    )
    client.on_connect = lambda _c, _u, _f, rc, _p: (
        up.set() if not rc.is_failure else None
    )
    client.connect("127.0.0.1", port, clean_start=True)
    client.loop_start()
    return client, up


def test_a_node_cannot_take_centrals_sessions_and_no_acknowledged_event_is_lost(
    secure_site: Site,
) -> None:
    """The original attack: 100 events while a node clean-starts as central."""
    victim, attacker = secure_site.enrol("sim"), secure_site.enrol("sim")
    central = secure_site.central
    worker_bus = central.workers[0].bus
    assert central.link.bus.connected
    assert worker_bus.connected
    stolen = [
        "central",
        link_identity("w1"),
        ingest_identity("w1", 0),
        victim.device_id,
    ]
    stop = threading.Event()
    takeovers = [0]

    def attack() -> None:
        while not stop.is_set():
            for client_id in stolen:
                bus = secure_site.bus(attacker.tls, client_id, "bl/v1/#")
                if bus.wait_connected(2):
                    takeovers[0] += 1
                bus.stop()

    thief = threading.Thread(target=attack, daemon=True)
    client, up = _publisher(secure_site.broker_port, victim.tls, victim.device_id)
    try:
        assert up.wait(10), "the victim node could not connect"
        thief.start()
        acked = 0
        for n in range(1, 101):
            env = make(victim.device_id, "tick", {"seq": n}, now=datetime.now(UTC))
            info = client.publish(
                topics.event(victim.device_id, "tick"), encode(env), qos=1
            )
            info.wait_for_publish(10)
            acked += info.is_published()
            time.sleep(0.02)
        assert acked == 100
    finally:
        stop.set()
        thief.join(30)
        client.disconnect()
        client.loop_stop()
    assert takeovers[0] > 0  # the attacker did connect, as itself
    # central's sessions were never taken over
    assert central.link.bus.connected
    assert worker_bus.connected
    deadline = time.monotonic() + 20
    stored: list[int] = []
    while time.monotonic() < deadline:
        with Session(central.services.engine) as session:
            stored = [
                int(e.body["seq"])
                for e in registry.events(session, victim.device_id, limit=1000)
                if e.type == "tick"
            ]
        if len(stored) >= 100:
            break
        time.sleep(0.3)
    assert sorted(stored) == list(range(1, 101))


def test_a_node_posing_as_central_reads_and_writes_only_its_own_subtree(
    secure_site: Site,
) -> None:
    victim, attacker = secure_site.enrol("sim"), secure_site.enrol("sim")
    spy = secure_site.bus(attacker.tls, "central", f"bl/v1/{victim.device_id}/#")
    assert spy.wait_connected(10)
    spy.wait_subscribed(5)
    secure_site.central.link.publish_config(
        victim.device_id, version="v-secret", values={"heartbeat_s": 30}
    )
    forged = make(victim.device_id, "tick", {"seq": 1}, now=datetime.now(UTC))
    spy.publish(topics.event(victim.device_id, "tick"), encode(forged))
    time.sleep(2)
    seen = []
    while not spy.inbox.empty():
        seen.append(spy.inbox.get())
    assert not [m for m in seen if getattr(m, "topic", "").startswith("bl/v1/")]
    with Session(secure_site.central.services.engine) as session:
        assert registry.events(session, victim.device_id) == []
