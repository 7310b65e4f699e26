"""Evidence packages: sealed on the node, verified by central, tampering found."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from edge.protocol.evidence import EvidenceError, seal, verify
from provisioning.ca import FleetCA, make_csr, new_key

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
IMAGES = {"plate": b"\xff\xd8plate-jpeg", "scene": b"\xff\xd8scene-jpeg"}
FACTS = {"device": "cam-1", "text": "湘F12345", "seen_at": NOW.isoformat()}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FleetCA:
    path: Path = tmp_path_factory.mktemp("ca")
    return FleetCA.create(path, now=NOW)


def enrolled(ca: FleetCA, device: str) -> tuple[object, bytes]:
    key = new_key()
    issued = ca.issue(make_csr(key, device), common_name=device, now=NOW)
    return key, issued.pem


def test_fleet_signed_package_verifies(ca: FleetCA) -> None:
    key, cert = enrolled(ca, "cam-1")
    package = seal(IMAGES, FACTS, key=key, cert_pem=cert)  # type: ignore[arg-type]
    checked = verify(package, device="cam-1", issuers=[ca.intermediate, ca.root])
    assert checked.trust == "fleet"
    assert checked.images == IMAGES
    assert checked.facts == FACTS


def test_unenrolled_key_verifies_as_self(ca: FleetCA) -> None:
    package = seal(IMAGES, FACTS, key=ed25519.Ed25519PrivateKey.generate())
    assert verify(package, device="cam-1", issuers=[ca.intermediate]).trust == "self"


def test_tampering_is_named(ca: FleetCA, tmp_path: Path) -> None:
    key, cert = enrolled(ca, "cam-1")
    good = seal(IMAGES, FACTS, key=key, cert_pem=cert)  # type: ignore[arg-type]

    def refused(package: dict[str, object], device: str = "cam-1") -> str:
        with pytest.raises(EvidenceError) as caught:
            verify(package, device=device, issuers=[ca.intermediate, ca.root])
        return caught.value.reason

    swapped = {
        **good,
        "images": {**good["images"], "scene": base64.b64encode(b"other").decode()},
    }
    assert refused(swapped) == "evidence_hash"
    assert (
        refused({**good, "facts": {**FACTS, "text": "湘F99999"}}) == "evidence_digest"
    )
    other_key, _ = enrolled(ca, "cam-1")
    forged = seal(IMAGES, FACTS, key=other_key, cert_pem=cert)  # type: ignore[arg-type]
    assert refused(forged) == "evidence_signature"
    assert refused(good, device="cam-2") == "evidence_cert"
    stranger = FleetCA.create(tmp_path / "other-ca", now=NOW)
    alien_key, alien_cert = enrolled(stranger, "cam-1")
    alien = seal(IMAGES, FACTS, key=alien_key, cert_pem=alien_cert)  # type: ignore[arg-type]
    assert refused(alien) == "evidence_cert"
    assert refused({"images": "nope"}) == "evidence_malformed"
    assert refused({**good, "alg": "none"}) == "evidence_alg"
