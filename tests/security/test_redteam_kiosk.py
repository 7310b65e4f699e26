"""Issue 16's last finding: kiosk bookings needed no credential.

``/api/v1/kiosk/*`` was public: any machine could book slots, read content
and probe follow-up codes. Now every request carries a token the kiosk
signs with its fleet certificate (``Authorization: Node …``), checked by
``central.fleet.node_auth``. Here an attacker tries without one, with
another kind's or a foreign CA's certificate, with a retired kiosk's, and
with stolen tokens replayed, expired, moved to another route or tampered
with; then the real kiosk agent books through the real HTTP server.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from authworld import World, build
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session
from support.kiosks import NodeCredential, enrol_node
from support.nodes import node_config
from support.waiting import wait_until

from baling.broker import free_port
from baling.up import kiosk_credential
from central.api.kiosk import BOOKINGS_PER_HOUR, LOOKUP_POLICY
from central.complaints.models import Slot
from central.fleet import enrolment, registry
from central.main import load_or_create_ca
from edge.clock import ManualClock
from edge.node import build_agent
from edge.protocol.node_token import MAX_LIFETIME_S
from kiosk.agent import KioskAgent
from kiosk.errors import CentralRefusedError
from kiosk.settings import KioskSettings
from provisioning.ca import FleetCA, make_csr, new_key

if TYPE_CHECKING:
    from collections.abc import Iterator

    from httpx2 import Response

CONTENT = "/api/v1/kiosk/content"
SLOTS = "/api/v1/kiosk/slots"
BOOKINGS = "/api/v1/kiosk/bookings"
ROUTES = [
    ("GET", CONTENT),
    ("GET", SLOTS),
    ("GET", "/api/v1/kiosk/status/AB12CD34"),
    ("POST", BOOKINGS),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # One app for the module (its setup is most of the time): each test
    # enrols kiosks of its own, so replay caches and limits do not meet.
    where = tmp_path_factory.mktemp("kiosk-world")
    w = build(f"sqlite:///{where / 'central.sqlite3'}", where)
    w.services.ca = load_or_create_ca(w.services.settings, now=w.clock.now())
    with w.client:
        yield w
    w.services.engine.dispose()


def _ca(world: World) -> FleetCA:
    assert world.services.ca is not None
    return world.services.ca


def _enrol(world: World, device_id: str, kind: str = "kiosk") -> NodeCredential:
    return enrol_node(
        world.services.engine,
        _ca(world),
        device_id=device_id,
        kind=kind,
        site="north",
        now=world.clock.now(),
    )


def _call(
    world: World, method: str, path: str, token: str | None, json: object = None
) -> Response:
    headers = {"Authorization": f"Node {token}"} if token else {}
    return world.client.request(method, path, headers=headers, json=json)


def _get(world: World, kiosk: NodeCredential, path: str) -> Response:
    token = kiosk.token("GET", path, now=world.clock.now())
    return _call(world, "GET", path, token)


def _slot(world: World, capacity: int = 100) -> int:
    with Session(world.services.engine) as session:
        slot = Slot(
            centre="县政务服务中心",
            service="户籍办理",
            starts_at=world.clock.now() + timedelta(days=1),
            capacity=capacity,
        )
        session.add(slot)
        session.commit()
        assert slot.id is not None
        return slot.id


def _book(world: World, kiosk: NodeCredential, slot: int, phone: str) -> Response:
    token = kiosk.token("POST", BOOKINGS, now=world.clock.now())
    body = {"slot_id": slot, "name": "张三", "phone": phone}
    return _call(world, "POST", BOOKINGS, token, json=body)


def _refused(answer: Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"], answer.json()


def test_without_a_kiosk_credential_every_route_is_401(world: World) -> None:
    operator = world.login("root")  # an operator's token is not a kiosk's
    for method, path in ROUTES:
        for headers in ({}, operator, {"Authorization": "Node "}):
            answer = world.client.request(method, path, headers=headers)
            _refused(answer, 401, "Authorization: Node")
            assert answer.headers["www-authenticate"].startswith("Node")
        _refused(_call(world, method, path, "a.b.c"), 401, "kiosk credential refused")
    # nor is a stranger's body read past the anonymous limit (64 KiB)
    big = world.client.post(
        BOOKINGS,
        content=b"{" + b" " * 100_000,
        headers={"content-type": "application/json"},
    )
    _refused(big, 413, "without a token")


def test_an_enrolled_kiosk_reads_and_books(world: World) -> None:
    kiosk = _enrol(world, "kiosk-a")
    assert _get(world, kiosk, CONTENT).status_code == 200
    slot = _slot(world)
    assert slot in [s["id"] for s in _get(world, kiosk, SLOTS).json()]
    booked = _book(world, kiosk, slot, "13800000000")
    assert booked.status_code == 201, booked.text
    _refused(_get(world, kiosk, "/api/v1/kiosk/status/AB12CD34"), 404, "查询码")


def test_another_kinds_certificate_is_403(world: World) -> None:
    slot = _slot(world)
    for kind in ("camera", "handheld", "signal_controller"):
        node = _enrol(world, f"node-{kind.replace('_', '-')}", kind)
        _refused(_get(world, node, CONTENT), 403, f"a {kind}")
        assert _book(world, node, slot, "13800000000").status_code == 403


def test_a_foreign_ca_or_an_unrecorded_certificate_is_401(
    world: World, tmp_path: Path
) -> None:
    _enrol(world, "kiosk-f")
    foreign = FleetCA.create(tmp_path / "foreign", now=world.clock.now())
    for ca, words in (
        (foreign, "issued by the fleet CA"),  # a look-alike CA's "kiosk-f"
        (_ca(world), "the fleet issued"),  # ours, but never through enrolment
    ):
        key = new_key()
        issued = ca.issue(
            make_csr(key, "kiosk-f"), common_name="kiosk-f", now=world.clock.now()
        )
        forged = NodeCredential(
            device_id="kiosk-f", key=key, chain_pem=issued.chain_pem, serial=0
        )
        _refused(_get(world, forged, CONTENT), 401, words)


def test_a_retired_or_revoked_kiosk_is_refused_at_its_next_request(
    world: World, tmp_path: Path
) -> None:
    retired, revoked = _enrol(world, "kiosk-r"), _enrol(world, "kiosk-v")
    assert _get(world, retired, CONTENT).status_code == 200
    assert _get(world, revoked, CONTENT).status_code == 200
    with Session(world.services.engine) as session:
        enrolment.retire(
            session,
            _ca(world),
            "kiosk-r",
            now=world.clock.now(),
            crl_path=tmp_path / "crl.pem",
        )
        enrolment.revoke(session, "kiosk-v", now=world.clock.now())
    _refused(_get(world, retired, CONTENT), 401, "was revoked")
    _refused(_get(world, revoked, CONTENT), 401, "was revoked")


def test_a_stolen_token_is_single_use_short_lived_and_for_one_request(
    world: World,
) -> None:
    kiosk = _enrol(world, "kiosk-t")
    now = world.clock.now()
    token = kiosk.token("GET", CONTENT, now=now)
    assert _call(world, "GET", CONTENT, token).status_code == 200
    _refused(_call(world, "GET", CONTENT, token), 401, "a replay")
    moved = kiosk.token("GET", CONTENT, now=now)
    _refused(_call(world, "GET", SLOTS, moved), 401, "for GET")
    posted = kiosk.token("POST", BOOKINGS, now=now)
    _refused(_call(world, "GET", SLOTS, posted), 401, "got one for POST")
    old = kiosk.token("GET", CONTENT, now=now - timedelta(seconds=61))
    _refused(_call(world, "GET", CONTENT, old), 401, "expired")
    long = kiosk.token("GET", CONTENT, now=now, lifetime_s=MAX_LIFETIME_S + 1)
    _refused(_call(world, "GET", CONTENT, long), 401, f"at most {MAX_LIFETIME_S} s")
    ahead = kiosk.token("GET", CONTENT, now=now + timedelta(minutes=5))
    _refused(_call(world, "GET", CONTENT, ahead), 401, "issued by now")


def _tamper_claims(token: str, **changes: object) -> str:
    header, claims, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    data.update(changes)
    raw = json.dumps(data, separators=(",", ":")).encode()
    return ".".join(
        [header, base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), signature]
    )


def test_a_tampered_token_is_401(world: World) -> None:
    kiosk, other = _enrol(world, "kiosk-m"), _enrol(world, "kiosk-o")
    now = world.clock.now()
    token = kiosk.token("GET", CONTENT, now=now)
    head, body, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    _refused(_call(world, "GET", CONTENT, f"{head}.{body}.{flipped}"), 401, "signed")
    moved = _tamper_claims(token, htu=SLOTS)  # the signature no longer covers it
    _refused(_call(world, "GET", SLOTS, moved), 401, "signed by 'kiosk-m'")
    # kiosk-m's token presented with kiosk-o's certificate: not its key
    theirs = other.token("GET", CONTENT, now=now).split(".")[0]
    _refused(_call(world, "GET", CONTENT, f"{theirs}.{body}.{sig}"), 401, "signed")
    none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    _refused(_call(world, "GET", CONTENT, f"{none}.{body}."), 401, "ES256")


def test_bookings_and_code_guesses_are_limited_per_kiosk(world: World) -> None:
    busy, other = _enrol(world, "kiosk-b"), _enrol(world, "kiosk-c")
    slot = _slot(world, capacity=1000)
    codes = Counter(
        _book(world, busy, slot, f"1380000{i:04d}").status_code
        for i in range(BOOKINGS_PER_HOUR + 1)
    )
    assert codes == {201: BOOKINGS_PER_HOUR, 429: 1}, codes
    assert _book(world, other, slot, "13900000000").status_code == 201
    guesses = Counter(
        _get(world, busy, f"/api/v1/kiosk/status/ZZ{i:06d}").status_code
        for i in range(LOOKUP_POLICY.free + 2)
    )
    assert guesses[429] >= 1, guesses
    _refused(_get(world, busy, "/api/v1/kiosk/status/ZZ999999"), 429, "查询次数过多")
    _refused(_get(world, other, "/api/v1/kiosk/status/ZZ999999"), 404, "查询码")


def _serve(world: World) -> tuple[uvicorn.Server, threading.Thread, int]:
    server = uvicorn.Server(
        uvicorn.Config(world.client.app, host="127.0.0.1", port=0, log_level="warning")
    )
    web = threading.Thread(target=server.run, daemon=True)
    web.start()
    wait_until(lambda: server.started)
    return server, web, int(server.servers[0].sockets[0].getsockname()[1])


def _agent(
    world: World, tmp_path: Path, port: int, device_id: str, **files: object
) -> KioskAgent:
    settings = node_config(
        KioskSettings,
        device_id=device_id,
        kind="kiosk",
        tmp_path=tmp_path,
        broker_port=free_port(),  # the link is never started
        central_url=f"http://127.0.0.1:{port}",
        printer_url="",
        **files,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = world.clock
    assert isinstance(clock, ManualClock)
    return build_agent(KioskAgent, settings, clock=clock)


def test_the_kiosk_agent_books_with_its_enrolment_files(
    world: World, tmp_path: Path
) -> None:
    files = tmp_path / "kiosk-g-files"
    kiosk = enrol_node(
        world.services.engine,
        _ca(world),
        device_id="kiosk-g",
        site="north",
        now=world.clock.now(),
        directory=files,
    )
    slot = _slot(world)
    server, web, port = _serve(world)
    agents = [
        _agent(
            world,
            tmp_path,
            port,
            "kiosk-g",
            cert_file=kiosk.cert_file,
            key_file=kiosk.key_file,
        ),
        _agent(world, tmp_path, port, "kiosk-x"),  # never enrolled: no files
    ]
    try:
        enrolled, stranger = agents
        assert slot in [s["id"] for s in enrolled.slots("户籍办理")]
        booked = enrolled.book(slot, "李四", "13700000000")
        assert booked["centre"] == "县政务服务中心"
        assert enrolled.sync_content() is True
        with pytest.raises(CentralRefusedError) as refused:
            stranger.book(slot, "王五", "13600000000")
        assert refused.value.status == 401
        assert stranger.sync_content() is False
    finally:
        for agent in agents:
            agent.outbox.close()
        server.should_exit = True
        web.join(timeout=10)


def test_the_demo_kiosk_gets_a_credential_the_way_enrolment_gives_one(
    world: World, tmp_path: Path
) -> None:
    # baling up runs its kiosk on the loopback broker, never enrolled.
    with Session(world.services.engine) as session:
        registry.register(
            session, device_id="kiosk-d", kind="kiosk", now=world.clock.now()
        )

    def issue() -> NodeCredential:
        files = kiosk_credential(
            world.services.engine,
            _ca(world),
            device_id="kiosk-d",
            node_dir=tmp_path / "kiosk-d",
            now=world.clock.now(),
        )
        key = serialization.load_pem_private_key(
            Path(files["key_file"]).read_bytes(), None
        )
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        chain = Path(files["cert_file"]).read_bytes()
        return NodeCredential(device_id="kiosk-d", key=key, chain_pem=chain, serial=0)

    first = issue()
    assert _get(world, first, CONTENT).status_code == 200
    assert issue().chain_pem == first.chain_pem  # kept across runs
    with Session(world.services.engine) as session:
        enrolment.revoke(session, "kiosk-d", now=world.clock.now())
    _refused(_get(world, first, CONTENT), 401, "was revoked")
    again = issue()  # the next run issues a fresh one
    assert again.chain_pem != first.chain_pem
    assert _get(world, again, CONTENT).status_code == 200
