"""The fleet certificate authority: a root, an issuing intermediate, node certificates.

Pure key and certificate operations on ``cryptography``; where keys live on
disk (mode 0600 in 0700 directories, optional passphrase) is
:func:`FleetCA.create` / :func:`FleetCA.load`'s concern. The root can live
offline: :func:`create_root` makes it (its key always passphrase-encrypted)
on a separate medium and :func:`issue_intermediate` signs the online issuing
CA central uses, so central's data directory never holds the root key.
Node certificates carry OU ``node``; central's own broker identities
(``central…``) OU ``service`` and come only from :meth:`FleetCA.issue_service`
— :meth:`FleetCA.issue`, which enrolment uses, refuses those names.
Recording serials in central's database is left to the enrolment service.
Node keys are never seen here: a node sends a CSR and gets its chain back.
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

from provisioning.errors import ProvisioningError
from provisioning.identity import (
    IdentityError,
    check_node_identity,
    check_service_identity,
)

if TYPE_CHECKING:
    from pathlib import Path

ORG = "Baling 数字巴陵"
# OpenSSL refuses every client once the CRL's next update has passed, so
# central rewrites it well before (central.fleet.broker_access, daily).
CRL_VALIDITY = timedelta(days=7)


class CAError(ProvisioningError, ValueError):
    """A CSR, certificate or key the CA refuses, with the reason."""


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) and set it to mode 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def write_atomically(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Write ``data`` to ``path`` via a synced temporary file (0600 when secret).

    A secret's directory is made 0700 as well.
    """
    if secret:
        private_dir(path.parent)
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
        previous: tuple[tuple[x509.Certificate, ec.EllipticCurvePrivateKey], ...] = (),
    ) -> None:
        self.root = root
        self.intermediate = intermediate
        self._key = intermediate_key
        # issuing CAs rotated out whose certificates may still be in use: each
        # still signs a CRL, or the broker refuses every certificate they issued
        self._previous = previous

    # -- creation and storage --------------------------------------------------
    @classmethod
    def create(
        cls, directory: Path, *, now: datetime, passphrase: bytes | None = None
    ) -> FleetCA:
        """Make a new root and intermediate and store them under ``directory``.

        The one-machine default: the root key sits beside the issuing key
        (0600, encrypted when a passphrase is given). A site keeps it offline
        instead (:func:`create_root`, :func:`issue_intermediate`).
        """
        root_key, int_key = new_key(), new_key()
        root = _root_cert(root_key, now=now)
        intermediate = _intermediate_cert(root, root_key, int_key, now=now)
        private_dir(directory)
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
        previous = []
        for folder in sorted((directory / "previous").glob("*")):
            old = cls.load(folder, passphrase=passphrase)
            previous.append((old.intermediate, old._key))  # noqa: SLF001 - same class
        return cls(
            root=root,
            intermediate=inter,
            intermediate_key=key,
            previous=tuple(previous),
        )

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
        lifetime: timedelta | None = None,
    ) -> Issued:
        """Sign a node's (or, ``server``, the broker's) CSR for ``common_name``.

        Args:
            csr_pem: the PEM request; its subject must be ``common_name``.
            common_name: the identity; a node's may not be a service name.
            now: the issuing time.
            days: validity, unless ``lifetime`` is given.
            server: a TLS server certificate (the broker's) with ``hosts``.
            hosts: extra DNS names or IP addresses for a server certificate.
            lifetime: an exact validity (central's short-lived eject identities).

        Raises:
            CAError: the CSR is malformed, badly signed, names another identity,
                or a node asks for a reserved service name.
        """
        if not server:
            try:
                check_node_identity(common_name)
            except IdentityError as exc:
                raise CAError(str(exc)) from exc
        return self._sign(
            csr_pem,
            common_name=common_name,
            now=now,
            lifetime=lifetime or timedelta(days=days),
            unit="server" if server else "node",
            hosts=hosts if server else None,
        )

    def issue_service(
        self, csr_pem: bytes, *, common_name: str, now: datetime, days: int = 365
    ) -> Issued:
        """Sign one of central's own broker identities (``central…``, OU service).

        Only central calls this, for its own keys; no HTTP route reaches it.

        Raises:
            CAError: the name is not a service identity, or the CSR is bad.
        """
        try:
            check_service_identity(common_name)
        except IdentityError as exc:
            raise CAError(str(exc)) from exc
        return self._sign(
            csr_pem,
            common_name=common_name,
            now=now,
            lifetime=timedelta(days=days),
            unit="service",
            hosts=None,
        )

    def _sign(
        self,
        csr_pem: bytes,
        *,
        common_name: str,
        now: datetime,
        lifetime: timedelta,
        unit: str,
        hosts: tuple[str, ...] | None,
    ) -> Issued:
        server = hosts is not None
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
            .subject_name(_name(common_name, unit))
            .issuer_name(self.intermediate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + lifetime)
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if hosts is not None:
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
        """The CRLs (PEM) listing ``(serial, revoked_at)``.

        One from the issuing CA and one from each issuing CA rotated out
        (``previous/``), concatenated: Mosquitto loads every CRL in the file.
        """
        signers = [(self.intermediate, self._key), *self._previous]
        return b"".join(_crl(cert, key, revoked, now=now) for cert, key in signers)


def _crl(
    issuer: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    revoked: list[tuple[int, datetime]],
    *,
    now: datetime,
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(when.astimezone(UTC))
            .build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _root_cert(key: ec.EllipticCurvePrivateKey, *, now: datetime) -> x509.Certificate:
    root_name = _name("Baling fleet root CA", "ca")
    return (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * 20))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )


def _intermediate_cert(
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    *,
    now: datetime,
    name: str = "Baling fleet issuing CA",
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(name, "ca"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * 5))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )


MIN_PASSPHRASE = 12


def create_root(
    root_dir: Path, *, now: datetime, passphrase: bytes
) -> x509.Certificate:
    """Make the fleet root on an offline medium; its key is always encrypted.

    Raises:
        CAError: the passphrase is too short or a root already exists there.
    """
    if len(passphrase) < MIN_PASSPHRASE:
        raise CAError(
            f"expected a root passphrase of at least {MIN_PASSPHRASE} characters, "
            f"got {len(passphrase)}"
        )
    if (root_dir / "root.key").exists():
        raise CAError(f"expected no root in {root_dir}, got one already; keep it")
    key = new_key()
    root = _root_cert(key, now=now)
    private_dir(root_dir)
    write_atomically(root_dir / "root.key", key_pem(key, passphrase), secret=True)
    write_atomically(root_dir / "root.pem", _pem(root))
    return root


def issue_intermediate(
    root_dir: Path,
    out_dir: Path,
    *,
    now: datetime,
    passphrase: bytes,
    issuing_passphrase: bytes | None = None,
) -> FleetCA:
    """Sign a new online issuing CA with the offline root; write it to ``out_dir``.

    ``out_dir`` (central's ``<data_dir>/ca``) gets ``issuing.key`` (0600,
    encrypted with ``issuing_passphrase`` when given), ``issuing.pem`` and
    ``root.pem`` — never the root key. An issuing CA already there moves to
    ``previous/<time>/``: certificates it issued stay valid (the root signed
    it) and it keeps signing a CRL for them. The issuing passphrase must be
    the same for both (central loads them with one).

    Raises:
        CAError: the root cannot be loaded (missing, wrong passphrase).
    """
    try:
        root_key = serialization.load_pem_private_key(
            (root_dir / "root.key").read_bytes(), passphrase
        )
        root = x509.load_pem_x509_certificate((root_dir / "root.pem").read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise CAError(f"cannot load the offline root from {root_dir}: {exc}") from exc
    if not isinstance(root_key, ec.EllipticCurvePrivateKey):
        raise CAError(f"expected an EC root key, got {type(root_key).__name__}")
    key = new_key()
    # a name of its own: OpenSSL finds a certificate's CRL by its issuer's name
    intermediate = _intermediate_cert(
        root, root_key, key, now=now, name=f"Baling fleet issuing CA {now:%Y%m%d%H%M%S}"
    )
    private_dir(out_dir)
    if (out_dir / "issuing.key").exists():  # rotation: keep the old one for CRLs
        keep = private_dir(out_dir / "previous" / f"{now:%Y%m%d%H%M%S}")
        for name in ("issuing.key", "issuing.pem"):
            (out_dir / name).replace(keep / name)
        (keep / "root.pem").write_bytes((out_dir / "root.pem").read_bytes())
    write_atomically(
        out_dir / "issuing.key", key_pem(key, issuing_passphrase), secret=True
    )
    write_atomically(out_dir / "issuing.pem", _pem(intermediate))
    write_atomically(out_dir / "root.pem", _pem(root))
    return FleetCA(root=root, intermediate=intermediate, intermediate_key=key)


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
