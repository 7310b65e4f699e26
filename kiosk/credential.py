"""The kiosk's credential for central's kiosk API: its fleet certificate, per request.

Central serves ``/api/v1/kiosk/*`` only to enrolled kiosks. The kiosk signs
each request with the private key enrolment left in ``key_file``
(``node.key``), its certificate chain from ``cert_file`` (``node.pem``) in
the token's header; :class:`NodeTokenAuth` adds the token to every request
of an httpx client. The token's format is the wire contract's
(:mod:`edge.protocol.node_token`); what central checks is
:mod:`central.fleet.node_auth`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge.errors import SettingsError
from edge.protocol.node_token import (
    SCHEME,
    NodeTokenError,
    chain_from_pem,
    sign_request,
)

if TYPE_CHECKING:
    from collections.abc import Generator
    from pathlib import Path

    from cryptography import x509

    from edge.clock import Clock


class NodeTokenAuth(httpx2.Auth):
    """Signs each request for central: ``Authorization: Node <token>``."""

    def __init__(
        self,
        *,
        device_id: str,
        key: ec.EllipticCurvePrivateKey,
        chain: list[x509.Certificate],
        clock: Clock,
    ) -> None:
        self.device_id = device_id
        self._key = key
        self._chain = chain
        self._clock = clock

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        """Add a token for this method and path (one token per request)."""
        token = sign_request(
            key=self._key,
            chain=self._chain,
            device_id=self.device_id,
            method=request.method,
            path=request.url.path,
            now=self._clock.now(),
        )
        request.headers["Authorization"] = f"{SCHEME} {token}"
        yield request


def load_auth(
    *, device_id: str, cert_file: Path, key_file: Path, clock: Clock
) -> NodeTokenAuth:
    """The kiosk's signer from its enrolment files.

    Raises:
        SettingsError: a file cannot be read, is not a P-256 key or a
            certificate chain, or the certificate is not the key's; the
            message names the file.
    """
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        msg = f"key_file {key_file}: expected the node's PEM key, got: {exc}"
        raise SettingsError(msg) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        msg = f"key_file {key_file}: expected an EC P-256 key, got {type(key).__name__}"
        raise SettingsError(msg)
    try:
        chain = chain_from_pem(cert_file.read_bytes())
        auth = NodeTokenAuth(device_id=device_id, key=key, chain=chain, clock=clock)
        sign_request(  # fail now, not at a citizen's first booking
            key=key,
            chain=chain,
            device_id=device_id,
            method="GET",
            path="/",
            now=clock.now(),
        )
    except (OSError, NodeTokenError) as exc:
        msg = f"cert_file {cert_file}: {exc}"
        raise SettingsError(msg) from exc
    return auth
