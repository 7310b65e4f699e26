"""The fleet certificate authority: a root, an issuing intermediate, node certificates.

Pure key and certificate operations on ``cryptography``; where keys live on
disk (mode 0600, optional passphrase) is :func:`FleetCA.create` /
:func:`FleetCA.load`'s concern, and recording serials in central's database
is left to the enrolment service. Node keys are never seen here: a node
sends a CSR and gets back its certificate chain.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from pathlib import Path

ORG = "Baling 数字巴陵"


class CAError(ValueError):
    """A CSR, certificate or key the CA refuses, with the reason."""


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def write_atomically(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Write ``data`` to ``path`` via a synced temporary file (0600 when secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key (what a Pi's TLS stack and Mosquitto handle well)."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    """Serialise a private key, encrypted when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def make_csr(key: ec.EllipticCurvePrivateKey, device_id: str) -> bytes:
    """A node's certificate signing request (PEM) for ``device_id``."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(device_id, "node"))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate the CA issued."""

    serial: int
    common_name: str
    not_after: datetime
    pem: bytes
    chain_pem: bytes  # leaf + intermediate, what a client presents


class FleetCA:
    """A root and an issuing intermediate; the root key can stay offline."""

    def __init__(
        self,
        *,
        root: x509.Certificate,
        intermediate: x509.Certificate,
        intermediate_key: ec.EllipticCurvePrivateKey,
    ) -> None:
        self.root = root
        self.intermediate = intermediate
        self._key = intermediate_key

    # -- creation and storage --------------------------------------------------
    @classmethod
    def create(
        cls, directory: Path, *, now: datetime, passphrase: bytes | None = None
    ) -> FleetCA:
        """Make a new root and intermediate and store them under ``directory``."""
        root_key, int_key = new_key(), new_key()
        root_name = _name("Baling fleet root CA", "ca")
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * 20))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                critical=False,
            )
            .sign(root_key, hashes.SHA256())
        )
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name("Baling fleet issuing CA", "ca"))
            .issuer_name(root_name)
            .public_key(int_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * 5))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        write_atomically(
            directory / "root.key", key_pem(root_key, passphrase), secret=True
        )
        write_atomically(directory / "root.pem", _pem(root), secret=False)
        write_atomically(
            directory / "issuing.key", key_pem(int_key, passphrase), secret=True
        )
        write_atomically(directory / "issuing.pem", _pem(intermediate), secret=False)
        return cls(root=root, intermediate=intermediate, intermediate_key=int_key)

    @classmethod
    def load(cls, directory: Path, *, passphrase: bytes | None = None) -> FleetCA:
        """Load the CA from ``directory`` (the root key is not needed).

        Raises:
            CAError: a file is missing or the passphrase is wrong.
        """
        try:
            key = serialization.load_pem_private_key(
                (directory / "issuing.key").read_bytes(), passphrase
            )
            root = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
            inter = x509.load_pem_x509_certificate(
                (directory / "issuing.pem").read_bytes()
            )
        except (OSError, ValueError, TypeError) as exc:
            raise CAError(f"cannot load the fleet CA from {directory}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CAError(f"expected an EC issuing key, got {type(key).__name__}")
        return cls(root=root, intermediate=inter, intermediate_key=key)

    @property
    def bundle_pem(self) -> bytes:
        """What peers trust: the root certificate."""
        return _pem(self.root)

    # -- issuing ---------------------------------------------------------------
    def issue(
        self,
        csr_pem: bytes,
        *,
        common_name: str,
        now: datetime,
        days: int = 365,
        server: bool = False,
        hosts: tuple[str, ...] = (),
    ) -> Issued:
        """Sign a CSR whose subject is exactly ``common_name``.

        Raises:
            CAError: the CSR is malformed, badly signed, or names another identity.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise CAError(f"expected a PEM certificate request, got: {exc}") from exc
        if not csr.is_signature_valid:
            raise CAError("expected a CSR signed by its own key, got a bad signature")
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        got = str(names[0].value) if names else ""
        if got != common_name:
            raise CAError(f"expected a CSR for {common_name!r}, got one for {got!r}")
        usage = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if server
            else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, "server" if server else "node"))
            .issuer_name(self.intermediate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [_alt_name(h) for h in (common_name, *hosts)]
                ),
                critical=False,
            )
        cert = builder.sign(self._key, hashes.SHA256())
        return Issued(
            serial=cert.serial_number,
            common_name=common_name,
            not_after=cert.not_valid_after_utc,
            pem=_pem(cert),
            chain_pem=_pem(cert) + _pem(self.intermediate),
        )

    def crl(self, revoked: list[tuple[int, datetime]], *, now: datetime) -> bytes:
        """A CRL (PEM) from the issuing CA listing ``(serial, revoked_at)``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.intermediate.subject)
            .last_update(now)
            .next_update(now + timedelta(days=7))
        )
        for serial, when in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(when.astimezone(UTC))
                .build()
            )
        return builder.sign(self._key, hashes.SHA256()).public_bytes(
            serialization.Encoding.PEM
        )


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
