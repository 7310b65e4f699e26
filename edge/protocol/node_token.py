"""Node request tokens: a node proves who it is to central's HTTP API, per request.

A node (today the kiosk) signs one short-lived JWT (RFC 7519, JWS ES256) for
each request with the private key of its fleet certificate. The header
carries the certificate chain (``x5c``: the node's certificate, then the
issuing CA's); the claims name the node (``iss`` = ``sub`` = device id),
the audience (:data:`AUDIENCE`), a one-time id (``jti``), a lifetime of at
most :data:`MAX_LIFETIME_S` and, like DPoP (RFC 9449), the request it is
for: ``htm`` the method and ``htu`` the path (the path only, not scheme and
host, which a reverse proxy rewrites). It travels as
``Authorization: Node <token>``.

This module makes tokens; checking them (the chain to the fleet root, the
certificate's serial against the registry, the replay cache) is
:mod:`central.fleet.node_auth`'s. Pure: the key, the chain and the time come
in, a string goes out.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from edge.protocol.errors import PayloadError

if TYPE_CHECKING:
    from datetime import datetime

SCHEME = "Node"  # Authorization: Node <token>
AUDIENCE = "baling-central"
TYPE = "node+jwt"
LIFETIME_S = 60  # what a node asks for
MAX_LIFETIME_S = 120  # what central accepts (exp - iat)
_P256_BYTES = 32


class NodeTokenError(PayloadError):
    """A key or certificate chain a node cannot sign a request token with."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def chain_from_pem(pem: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM chain file (the node's first, as enrolment writes).

    Raises:
        NodeTokenError: no certificate in it, or one is malformed.
    """
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        msg = f"expected a PEM certificate chain, got: {exc}"
        raise NodeTokenError(msg, field="cert_file") from exc
    return chain


def sign_request(
    *,
    key: ec.EllipticCurvePrivateKey,
    chain: list[x509.Certificate],
    device_id: str,
    method: str,
    path: str,
    now: datetime,
    lifetime_s: int = LIFETIME_S,
) -> str:
    """A token for one request (``method`` on ``path``), valid ``lifetime_s``.

    Args:
        key: the node's P-256 key (the one its certificate names).
        chain: the node's certificate first, then its issuer.
        device_id: the node's id (its certificate's common name).
        method: the HTTP method (``GET``, ``POST``).
        path: the request's path without the query (``/api/v1/kiosk/slots``).
        now: the node's time.
        lifetime_s: seconds until it expires (central accepts at most
            :data:`MAX_LIFETIME_S`).

    Raises:
        NodeTokenError: the key is not P-256, the chain is empty or its first
            certificate is not the key's.

    Returns:
        The compact JWS.
    """
    if not isinstance(key.curve, ec.SECP256R1):
        msg = f"expected a P-256 key, got {key.curve.name}"
        raise NodeTokenError(msg, field="key_file")
    if not chain:
        msg = "expected the node's certificate chain, got no certificate"
        raise NodeTokenError(msg, field="cert_file")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if chain[0].public_key().public_bytes(der, spki) != key.public_key().public_bytes(
        der, spki
    ):
        msg = "expected the certificate of this node's key first in the chain"
        raise NodeTokenError(msg, field="cert_file")
    header = {
        "alg": "ES256",
        "typ": TYPE,
        "x5c": [base64.b64encode(c.public_bytes(der)).decode("ascii") for c in chain],
    }
    iat = int(now.timestamp())
    claims = {
        "iss": device_id,
        "sub": device_id,
        "aud": AUDIENCE,
        "iat": iat,
        "exp": iat + lifetime_s,
        "jti": secrets.token_urlsafe(16),
        "htm": method.upper(),
        "htu": path,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode())
        for part in (header, claims)
    )
    r, s = decode_dss_signature(
        key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    )
    signature = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    return f"{signing_input}.{_b64url(signature)}"
