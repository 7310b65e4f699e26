"""Who is calling: a node's request token checked against the fleet CA and registry.

A node signs each HTTP request with the key of its fleet certificate
(:mod:`edge.protocol.node_token` makes the token). :func:`verify` accepts
it only when, in this order:

1. the token is a compact JWS of ``alg`` ES256 whose ``x5c`` header holds
   the node's certificate, issued by the fleet's issuing CA (the current
   one, or one the fleet root signed, so certificates survive a rotation of
   the issuing CA), valid now, a node certificate (OU ``node``, not a CA);
2. the signature verifies with that certificate's key, and the claims hold:
   ``iss`` = ``sub`` = the certificate's name, ``aud`` central's, ``iat``
   not in the future, ``exp`` passed neither nor more than
   :data:`~edge.protocol.node_token.MAX_LIFETIME_S` after ``iat``, ``htm``
   and ``htu`` this request's method and path;
3. the certificate's serial is a live (unrevoked) ``Certificate`` row of
   that device, and the device is registered, not retired, of an allowed
   kind (retiring or replacing a node revokes it at its next request);
4. its ``jti`` was not seen before (:class:`ReplayCache`, bounded per node).

Failures raise :class:`NodeAuthError` with what was expected and what
came (``status`` 401, or 403 for a genuine node of a kind the route does
not serve). Reading the header and answering HTTP is the API's
(:mod:`central.api.kiosk`); the clock comes in as ``now``.
"""

from __future__ import annotations

import base64
import binascii
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central.errors import AuthError
from central.models import Certificate, Device
from edge.protocol.node_token import AUDIENCE, MAX_LIFETIME_S

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlmodel import Session

MAX_TOKEN = 8 * 1024  # characters: two certificates and the claims fit well within
MAX_CHAIN = 3  # certificates in x5c
SKEW = timedelta(seconds=30)  # how far a node's clock may run ahead of central's
UNAUTHORIZED, FORBIDDEN = 401, 403
_REQUIRED = ("iss", "sub", "aud", "iat", "exp", "jti", "htm", "htu")


class NodeAuthError(AuthError):
    """A request token refused; ``status`` is 401 (who) or 403 (may not)."""

    def __init__(self, message: str, *, status: int = UNAUTHORIZED) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class NodeCaller:
    """A node whose request token verified."""

    device_id: str
    kind: str
    site: str
    serial: str  # its certificate's, hex


@dataclass
class ReplayCache:
    """The token ids each node used, until they expire; bounded per node.

    A node may have at most ``per_node`` live tokens (at most
    :data:`~edge.protocol.node_token.MAX_LIFETIME_S` old each); past that
    its requests are refused until some expire, so one node can slow only
    itself. Only tokens that verified are recorded, so strangers cannot
    fill it. Per process: a central with several HTTP processes keeps one
    each (a token could then be used once per process within its life).
    """

    per_node: int = 2000
    _seen: dict[str, dict[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def use(self, device_id: str, jti: str, *, expires: float, now: float) -> None:
        """Record ``jti`` for ``device_id`` until ``expires`` (Unix seconds).

        Raises:
            NodeAuthError: the id was used before, or the node has too many
                live tokens.
        """
        with self._lock:  # requests are checked on several threads
            self._use(device_id, jti, expires=expires, now=now)

    def _use(self, device_id: str, jti: str, *, expires: float, now: float) -> None:
        seen = self._seen.setdefault(device_id, {})
        if jti in seen:
            msg = f"expected a new token id, got {jti[:40]!r} again (a replay)"
            raise NodeAuthError(msg)
        if len(seen) >= self.per_node:
            for old in [k for k, exp in seen.items() if exp < now]:
                del seen[old]
        if len(seen) >= self.per_node:
            msg = (
                f"expected at most {self.per_node} requests from {device_id} in "
                f"{MAX_LIFETIME_S} s, got more; wait a minute"
            )
            raise NodeAuthError(msg)
        seen[jti] = expires


def _load_chain(header: dict[str, Any]) -> list[x509.Certificate]:
    x5c = header.get("x5c")
    if (
        not isinstance(x5c, list)
        or not 1 <= len(x5c) <= MAX_CHAIN
        or not all(isinstance(c, str) for c in x5c)
    ):
        msg = f"expected an x5c header of 1 to {MAX_CHAIN} certificates"
        raise NodeAuthError(msg)
    try:
        return [
            x509.load_der_x509_certificate(base64.b64decode(c, validate=True))
            for c in x5c
        ]
    except (ValueError, binascii.Error) as exc:
        msg = f"expected base64 DER certificates in x5c, got: {exc}"
        raise NodeAuthError(msg) from exc


def _valid_at(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(
            cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        )
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issuers(
    chain: list[x509.Certificate],
    *,
    root: x509.Certificate,
    issuing: x509.Certificate,
    now: datetime,
) -> list[x509.Certificate]:
    """The issuing CAs a node certificate may come from: ours or one the root signed."""
    presented = [
        c for c in chain[1:] if _is_ca(c) and _valid_at(c, now) and _signed_by(c, root)
    ]
    return [issuing, *presented]


def _check_certificate(
    chain: list[x509.Certificate],
    *,
    root: x509.Certificate,
    issuing: x509.Certificate,
    now: datetime,
) -> tuple[x509.Certificate, str]:
    leaf = chain[0]
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    units = leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    name = str(names[0].value) if names else ""
    if not any(
        _signed_by(leaf, ca)
        for ca in _issuers(chain, root=root, issuing=issuing, now=now)
    ):
        msg = f"expected a certificate issued by the fleet CA, got one for {name!r:.80}"
        raise NodeAuthError(msg)
    if _is_ca(leaf) or [u.value for u in units] != ["node"]:
        got = leaf.subject.rfc4514_string()
        msg = f"expected a node certificate (OU node), got {got:.120}"
        raise NodeAuthError(msg)
    if not _valid_at(leaf, now):
        msg = (
            f"expected a certificate valid at {now.isoformat()}, got one valid "
            f"{leaf.not_valid_before_utc.isoformat()} to "
            f"{leaf.not_valid_after_utc.isoformat()}"
        )
        raise NodeAuthError(msg)
    if not isinstance(leaf.public_key(), ec.EllipticCurvePublicKey):
        raise NodeAuthError("expected a certificate with an EC P-256 key")
    return leaf, name


def _check_claims(
    claims: dict[str, Any], *, name: str, method: str, path: str, now: datetime
) -> None:
    if claims["iss"] != name or claims["sub"] != name:
        msg = (
            f"expected iss and sub {name!r} (the certificate's name), got "
            f"{claims['iss']!r:.80} and {claims['sub']!r:.80}"
        )
        raise NodeAuthError(msg)
    iat, exp = claims["iat"], claims["exp"]
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in (iat, exp)):
        raise NodeAuthError("expected whole seconds in iat and exp")
    if not 0 < exp - iat <= MAX_LIFETIME_S:
        msg = f"expected a token living at most {MAX_LIFETIME_S} s, got {exp - iat} s"
        raise NodeAuthError(msg)
    stamp = now.timestamp()
    if iat > stamp + SKEW.total_seconds():
        msg = (
            f"expected a token issued by now ({now.isoformat()}), got one from "
            "later; set the node's clock (NTP)"
        )
        raise NodeAuthError(msg)
    if exp <= stamp:
        msg = (
            f"token expired at {datetime.fromtimestamp(exp, UTC).isoformat()}, "
            f"central's time is {now.isoformat()} (a replay, or the node's clock "
            "is behind: set it by NTP)"
        )
        raise NodeAuthError(msg)
    if claims["htm"] != method or claims["htu"] != path:
        msg = (
            f"expected a token for {method} {path}, got one for "
            f"{claims['htm']!s:.10} {claims['htu']!s:.200}"
        )
        raise NodeAuthError(msg)
    if not isinstance(claims["jti"], str) or not 16 <= len(claims["jti"]) <= 64:  # noqa: PLR2004
        raise NodeAuthError("expected a jti of 16 to 64 characters")


def _check_registry(
    session: Session,
    leaf: x509.Certificate,
    name: str,
    *,
    kinds: Collection[str],
) -> NodeCaller:
    serial = format(leaf.serial_number, "x")
    row = session.get(Certificate, serial)
    if row is None or row.device_id != name:
        msg = (
            f"expected a certificate the fleet issued to {name!r}, got serial {serial}"
        )
        raise NodeAuthError(msg)
    if row.revoked_at is not None:
        msg = f"certificate {serial} of {name!r} was revoked"
        raise NodeAuthError(msg)
    device = session.get(Device, name)
    if device is None or device.retired_at is not None:
        msg = f"device {name!r} is {'retired' if device else 'not registered'}"
        raise NodeAuthError(msg)
    if device.kind not in kinds:
        msg = (
            f"expected a node of kind {' or '.join(sorted(kinds))}, got "
            f"{name!r}, a {device.kind}"
        )
        raise NodeAuthError(msg, status=FORBIDDEN)
    return NodeCaller(device_id=name, kind=device.kind, site=device.site, serial=serial)


def verify(
    session: Session,
    token: str,
    *,
    root: x509.Certificate,
    issuing: x509.Certificate,
    method: str,
    path: str,
    kinds: Collection[str],
    replay: ReplayCache,
    now: datetime,
) -> NodeCaller:
    """Check a node's request token; return the node.

    Args:
        session: central's database (certificates and devices).
        token: the compact JWS from ``Authorization: Node …``.
        root: the fleet root certificate.
        issuing: the fleet's current issuing CA certificate.
        method: this request's method.
        path: this request's path (no query).
        kinds: the device kinds the route serves.
        replay: where used token ids are kept.
        now: central's time.

    Raises:
        NodeAuthError: the token, its certificate or its node is not
            accepted; the message says which check failed.

    Returns:
        Who called.
    """
    now = now.astimezone(UTC)
    if len(token) > MAX_TOKEN:
        msg = f"expected a token of at most {MAX_TOKEN} characters, got {len(token)}"
        raise NodeAuthError(msg)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        msg = f"expected a signed node token (JWS), got: {exc}"
        raise NodeAuthError(msg) from exc
    if header.get("alg") != "ES256":
        msg = f"expected alg ES256, got {header.get('alg')!r:.20}"
        raise NodeAuthError(msg)
    leaf, name = _check_certificate(
        _load_chain(header), root=root, issuing=issuing, now=now
    )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            leaf.public_key(),  # type: ignore[arg-type]
            algorithms=["ES256"],
            audience=AUDIENCE,
            options={
                "require": list(_REQUIRED),
                "verify_exp": False,  # against central's clock, below
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        msg = f"expected a node token signed by {name!r}'s key, got: {exc}"
        raise NodeAuthError(msg) from exc
    _check_claims(claims, name=name, method=method, path=path, now=now)
    caller = _check_registry(session, leaf, name, kinds=kinds)
    replay.use(name, claims["jti"], expires=float(claims["exp"]), now=now.timestamp())
    return caller
