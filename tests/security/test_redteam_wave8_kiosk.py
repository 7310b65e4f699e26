"""Wave 8 of the red team against the kiosk credential (``Authorization: Node``).

An attacker with one enrolled kiosk's files, or one operator account, tries
algorithm confusion (HS256 keyed with the certificate's public key, ES384,
a foreign key behind a ``jku``/``x5u``/``kid`` header), and carries each
credential to the other API: a kiosk's token on the operator API, an
operator's token on the kiosk API under either scheme. All refused (these
held up; the tests keep them holding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import TYPE_CHECKING

import pytest
from authworld import World, build
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from support.kiosks import NodeCredential, enrol_node

from central.main import load_or_create_ca
from edge.protocol.node_token import chain_from_pem

if TYPE_CHECKING:
    from collections.abc import Iterator

CONTENT = "/api/v1/kiosk/content"
OPERATOR_ROUTES = ["/api/v1/devices", "/api/v1/complaints", "/api/v1/kiosk-content"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    where = tmp_path_factory.mktemp("wave8-kiosk")
    w = build(f"sqlite:///{where / 'central.sqlite3'}", where)
    w.services.ca = load_or_create_ca(w.services.settings, now=w.clock.now())
    with w.client:
        yield w
    w.services.engine.dispose()


def _kiosk(world: World, device_id: str) -> NodeCredential:
    assert world.services.ca is not None
    return enrol_node(
        world.services.engine,
        world.services.ca,
        device_id=device_id,
        kind="kiosk",
        site="north",
        now=world.clock.now(),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(kiosk: NodeCredential, world: World, header: dict[str, object]) -> str:
    """The kiosk's own claims for CONTENT under another header (unsigned yet)."""
    _h, claims, _s = kiosk.token("GET", CONTENT, now=world.clock.now()).split(".")
    return f"{_b64(json.dumps(header).encode())}.{claims}"


def _x5c(kiosk: NodeCredential) -> list[str]:
    der = serialization.Encoding.DER
    return [
        base64.b64encode(c.public_bytes(der)).decode()
        for c in chain_from_pem(kiosk.chain_pem)
    ]


def _status(world: World, path: str, authorization: str) -> int:
    return world.client.get(path, headers={"Authorization": authorization}).status_code


def test_algorithm_confusion_and_key_headers_are_refused(world: World) -> None:
    kiosk = _kiosk(world, "kiosk-w8a")
    x5c = _x5c(kiosk)
    pem = (
        chain_from_pem(kiosk.chain_pem)[0]
        .public_key()
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    unsigned = _forge(kiosk, world, {"alg": "HS256", "x5c": x5c})
    mac = hmac.new(pem, unsigned.encode(), hashlib.sha256).digest()
    assert _status(world, CONTENT, f"Node {unsigned}.{_b64(mac)}") == 401

    es384 = _forge(kiosk, world, {"alg": "ES384", "x5c": x5c})
    assert _status(world, CONTENT, f"Node {es384}.{_b64(b'x' * 96)}") == 401

    # A key of the attacker's, offered beside the kiosk's certificate.
    mine = ec.generate_private_key(ec.SECP256R1())
    for extra in (
        {"jku": "https://evil/jwks"},
        {"x5u": "https://evil/c"},
        {"kid": "1"},
    ):
        unsigned = _forge(kiosk, world, {"alg": "ES256", "x5c": x5c, **extra})
        r, s = decode_dss_signature(
            mine.sign(unsigned.encode(), ec.ECDSA(hashes.SHA256()))
        )
        sig = _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        assert _status(world, CONTENT, f"Node {unsigned}.{sig}") == 401
    # The real one still works.
    assert (
        _status(
            world, CONTENT, f"Node {kiosk.token('GET', CONTENT, now=world.clock.now())}"
        )
        == 200
    )


def test_a_credential_opens_only_its_own_api(world: World) -> None:
    kiosk = _kiosk(world, "kiosk-w8b")
    for path in OPERATOR_ROUTES:
        token = kiosk.token("GET", path, now=world.clock.now())
        assert _status(world, path, f"Node {token}") == 401, path
        assert _status(world, path, f"Bearer {token}") == 401, path
    world.add("w8-admin", "admin")
    bearer = world.login("w8-admin")["Authorization"]
    operator_token = bearer.partition(" ")[2]
    assert _status(world, OPERATOR_ROUTES[0], bearer) == 200
    assert _status(world, CONTENT, bearer) == 401
    assert _status(world, CONTENT, f"Node {operator_token}") == 401
