from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from provisioning.brokerconf import acl_text
from provisioning.ca import CAError, FleetCA, make_csr, new_key

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def test_issued_chain_verifies_to_the_root(tmp_path: Path) -> None:
    ca = FleetCA.create(tmp_path, now=NOW)
    issued = ca.issue(make_csr(new_key(), "cam-1"), common_name="cam-1", now=NOW)
    leaf = x509.load_pem_x509_certificate(issued.pem)
    leaf.verify_directly_issued_by(ca.intermediate)
    ca.intermediate.verify_directly_issued_by(ca.root)
    assert issued.chain_pem.count(b"BEGIN CERTIFICATE") == 2
    assert (tmp_path / "issuing.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "root.key").stat().st_mode & 0o777 == 0o600


def test_csr_for_another_identity_is_refused(tmp_path: Path) -> None:
    ca = FleetCA.create(tmp_path, now=NOW)
    with pytest.raises(
        CAError, match="expected a CSR for 'cam-1', got one for 'cam-2'"
    ):
        ca.issue(make_csr(new_key(), "cam-2"), common_name="cam-1", now=NOW)
    with pytest.raises(CAError, match="expected a PEM certificate request"):
        ca.issue(b"junk", common_name="cam-1", now=NOW)


def test_passphrase_protects_the_issuing_key(tmp_path: Path) -> None:
    FleetCA.create(tmp_path, now=NOW, passphrase=b"secret words")
    with pytest.raises(CAError, match="cannot load"):
        FleetCA.load(tmp_path, passphrase=b"wrong")
    with pytest.raises(CAError, match="cannot load"):
        FleetCA.load(tmp_path / "missing")


def test_crl_lists_revoked_serials(tmp_path: Path) -> None:
    ca = FleetCA.create(tmp_path, now=NOW)
    crl = x509.load_pem_x509_crl(ca.crl([(1234, NOW)], now=NOW))
    assert crl.get_revoked_certificate_by_serial_number(1234) is not None
    assert crl.is_signature_valid(ca.intermediate.public_key())  # type: ignore[arg-type]


def test_acl_confines_nodes_to_their_subtree() -> None:
    text = acl_text()
    assert "pattern write bl/v1/%u/event/#" in text
    assert "pattern read bl/v1/%u/cmd/#" in text
    assert "pattern read bl/v1/#" not in text
