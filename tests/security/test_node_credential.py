"""The kiosk credential's parts, without an app: the token, the signer, the cache.

The attacks through the API are ``test_redteam_kiosk.py``'s; here the
token is read by PyJWT alone (any standard JWS library must accept it), a
node cannot sign with a chain that is not its key's, the kiosk names the
file it cannot use, and the replay cache stays bounded per node.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from central.fleet.node_auth import NodeAuthError, ReplayCache
from edge.clock import ManualClock
from edge.errors import SettingsError
from edge.protocol.node_token import (
    AUDIENCE,
    NodeTokenError,
    chain_from_pem,
    sign_request,
)
from kiosk.credential import load_auth
from provisioning.ca import FleetCA, key_pem, make_csr, new_key

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography import x509

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def issued(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[FleetCA, list[x509.Certificate], bytes]:
    ca = FleetCA.create(tmp_path_factory.mktemp("ca"), now=NOW)
    key = new_key()
    cert = ca.issue(make_csr(key, "kiosk-1"), common_name="kiosk-1", now=NOW)
    return ca, chain_from_pem(cert.chain_pem), key_pem(key)


def test_a_token_is_a_standard_es256_jws(
    issued: tuple[FleetCA, list[x509.Certificate], bytes],
) -> None:
    _ca, chain, pem = issued
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    token = sign_request(
        key=key,
        chain=chain,
        device_id="kiosk-1",
        method="post",
        path="/api/v1/kiosk/bookings",
        now=NOW,
    )
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert len(header["x5c"]) == 2  # the node's certificate, then the issuer's
    claims = jwt.decode(
        token,
        chain[0].public_key(),  # type: ignore[arg-type]
        algorithms=["ES256"],
        audience=AUDIENCE,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "kiosk-1"
    assert (claims["htm"], claims["htu"]) == ("POST", "/api/v1/kiosk/bookings")
    assert claims["exp"] - claims["iat"] == 60
    assert len(claims["jti"]) >= 16


def test_a_node_cannot_sign_with_another_nodes_chain(
    issued: tuple[FleetCA, list[x509.Certificate], bytes],
) -> None:
    _ca, chain, _pem = issued
    with pytest.raises(NodeTokenError, match="certificate of this node's key"):
        sign_request(
            key=new_key(),
            chain=chain,
            device_id="kiosk-1",
            method="GET",
            path="/",
            now=NOW,
        )
    with pytest.raises(NodeTokenError, match="no certificate"):
        sign_request(
            key=new_key(), chain=[], device_id="k", method="GET", path="/", now=NOW
        )


def test_the_kiosk_names_the_file_it_cannot_use(
    issued: tuple[FleetCA, list[x509.Certificate], bytes], tmp_path: Path
) -> None:
    _ca, _chain, pem = issued
    clock = ManualClock(NOW)
    key_file, cert_file = tmp_path / "node.key", tmp_path / "node.pem"
    key_file.write_bytes(pem)
    cert_file.write_text("not a certificate", encoding="utf-8")
    with pytest.raises(SettingsError, match=f"cert_file {cert_file}"):
        load_auth(
            device_id="kiosk-1", cert_file=cert_file, key_file=key_file, clock=clock
        )
    missing = tmp_path / "absent.key"
    with pytest.raises(SettingsError, match=f"key_file {missing}"):
        load_auth(
            device_id="kiosk-1", cert_file=cert_file, key_file=missing, clock=clock
        )


def test_the_replay_cache_is_bounded_per_node() -> None:
    cache = ReplayCache(per_node=2)
    cache.use("kiosk-1", "a" * 16, expires=100.0, now=0.0)
    with pytest.raises(NodeAuthError, match="a replay"):
        cache.use("kiosk-1", "a" * 16, expires=100.0, now=1.0)
    cache.use("kiosk-1", "b" * 16, expires=100.0, now=1.0)
    with pytest.raises(NodeAuthError, match="at most 2 requests from kiosk-1"):
        cache.use("kiosk-1", "c" * 16, expires=100.0, now=2.0)
    cache.use("kiosk-2", "c" * 16, expires=100.0, now=2.0)  # others unaffected
    cache.use("kiosk-1", "c" * 16, expires=300.0, now=200.0)  # expired ones go
