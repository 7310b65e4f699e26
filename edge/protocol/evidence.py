"""Evidence packages: images and facts, hashed and signed by the node.

A package holds JPEG images by name (``plate``, ``scene``, ``before``,
``at_line``) and facts (the read, the time, the phase in force). Its digest
is SHA-256 over a canonical JSON of the facts and each image's SHA-256, so
the images can be stored apart and checked one by one. The node signs the
digest with the private key of its fleet certificate (ECDSA P-256, and the
certificate travels with the package) or, not enrolled, with a local
Ed25519 key whose public key travels instead. :func:`verify` checks hashes,
signature and — given the fleet CA — that the certificate names the device
and was issued by the fleet. Pure: values in, values out.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from edge.protocol.errors import PayloadError

Signer = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
Trust = Literal["fleet", "self"]


class EvidenceError(PayloadError):
    """A package that does not verify; ``reason`` says which check failed."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def digest(facts: dict[str, Any], image_hashes: dict[str, str]) -> str:
    """SHA-256 (hex) of the canonical facts and image hashes."""
    canonical = json.dumps(
        {"facts": facts, "images": image_hashes},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def seal(
    images: dict[str, bytes],
    facts: dict[str, Any],
    *,
    key: Signer,
    cert_pem: bytes | None = None,
) -> dict[str, Any]:
    """Build a signed package (JSON-ready) from JPEG images and facts."""
    hashes_ = {name: hashlib.sha256(data).hexdigest() for name, data in images.items()}
    value = digest(facts, hashes_)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(bytes.fromhex(value), ec.ECDSA(hashes.SHA256()))
        signer: dict[str, str] = {"alg": "ES256"}
        if cert_pem is not None:
            signer["cert"] = cert_pem.decode("ascii")
    else:
        sig = key.sign(bytes.fromhex(value))
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        signer = {"alg": "Ed25519", "public_key": _b64(raw)}
    return {
        "facts": facts,
        "sha256": hashes_,
        "digest": value,
        "signature": _b64(sig),
        **signer,
        "images": {name: _b64(data) for name, data in images.items()},
    }


@dataclass(frozen=True, slots=True)
class Verified:
    """A package that verified: its images, facts, digest and how far to trust it."""

    images: dict[str, bytes]
    facts: dict[str, Any]
    digest: str
    trust: Trust


def _fail(reason: str, message: str) -> EvidenceError:
    return EvidenceError(
        message, field="evidence", got=reason, reason=f"evidence_{reason}"
    )


def _check_cert(
    cert_pem: str, device: str, issuers: list[x509.Certificate]
) -> ec.EllipticCurvePublicKey:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    except ValueError as exc:
        raise _fail("cert", f"expected a PEM certificate: {exc}") from exc
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != device:
        raise _fail("cert", f"expected a certificate for {device!r}")
    for issuer in issuers:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        key = cert.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            return key
    raise _fail("cert", f"expected a certificate issued by the fleet CA for {device!r}")


def verify(
    package: dict[str, Any], *, device: str, issuers: list[x509.Certificate]
) -> Verified:
    """Check a package's hashes and signature.

    ``issuers`` are the fleet CA's certificates; a package signed with a
    certificate verifies with trust ``fleet``, one signed with a bare
    Ed25519 key (a node that was never enrolled) with trust ``self``.

    Raises:
        EvidenceError: malformed, a hash or the digest does not match, the
            signature is bad, or the certificate is not the device's from
            the fleet CA; the reason names which.
    """
    try:
        images = {
            n: base64.b64decode(v, validate=True) for n, v in package["images"].items()
        }
        facts = dict(package["facts"])
        claimed = dict(package["sha256"])
        sig = base64.b64decode(package["signature"], validate=True)
        alg = package["alg"]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _fail("malformed", f"expected an evidence package: {exc}") from exc
    for name, data in images.items():
        if hashlib.sha256(data).hexdigest() != claimed.get(name):
            raise _fail("hash", f"image {name!r} does not match its SHA-256")
    value = digest(facts, claimed)
    if value != package.get("digest"):
        raise _fail("digest", "the digest does not match the facts and images")
    try:
        if alg == "ES256" and "cert" in package:
            key = _check_cert(str(package["cert"]), device, issuers)
            key.verify(sig, bytes.fromhex(value), ec.ECDSA(hashes.SHA256()))
            trust: Trust = "fleet"
        elif alg == "Ed25519":
            raw = base64.b64decode(package["public_key"], validate=True)
            ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(
                sig, bytes.fromhex(value)
            )
            trust = "self"
        else:
            raise _fail(
                "alg", f"expected ES256 with a certificate or Ed25519, got {alg!r}"
            )
    except EvidenceError:
        raise
    except InvalidSignature as exc:
        raise _fail("signature", "the signature does not verify") from exc
    except (KeyError, ValueError) as exc:
        raise _fail("malformed", f"bad signer: {exc}") from exc
    return Verified(images=images, facts=facts, digest=value, trust=trust)
