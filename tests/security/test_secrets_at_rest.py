"""Secrets at rest (issue 16, finding 13): modes on disk, and an offline CA root.

Another local user of the central host (or of a node) must read none of:
central's data directory, its CA, its database, the broker's keys,
central's service identities, a node's key and data. The fleet root can
stay on an offline medium: ``baling ca init`` / ``baling ca intermediate``
(run as a real subprocess) leave central only the issuing CA, and
enrolment works on it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from siteworld import Site, running_site

from central.main import Central
from central.settings import CentralSettings
from provisioning.ca import CAError, FleetCA, create_root, make_csr, new_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def secure_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_url) as site:
        yield site


NOW = datetime.now(UTC)
ROOT_PHRASE = "a long offline root passphrase"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.mqtt
@pytest.mark.slow
def test_a_secured_sites_keys_and_database_are_private(secure_site: Site) -> None:
    site = secure_site
    node = site.enrol("kiosk")
    data = site.secure.settings.data_dir
    private_dirs = [
        data,
        data / "ca",
        data / "broker-identities",
        site.root / "certs",
        node.data_dir,
    ]
    for folder in private_dirs:
        assert _mode(folder) == 0o700, folder
    secrets = [
        data / "ca" / "issuing.key",
        data / "ca" / "root.key",
        data / "command-signing.key",
        site.root / "certs" / "server.key",
        data / "broker-identities" / "central-api-w1.key",
        data / "broker-identities" / "central-ingest-w1-0.key",
        node.data_dir / "node.key",
        site.root / "central.sqlite3",
    ]
    for path in secrets:
        assert path.exists(), path
        assert _mode(path) & 0o077 == 0, f"{path} is {oct(_mode(path))}"
    # what is public stays readable (peers need it)
    assert _mode(data / "ca" / "root.pem") & 0o044
    assert _mode(data / "ca" / "crl.pem") & 0o044


def test_central_alone_makes_its_data_dir_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    central = Central(
        CentralSettings(
            database_url=f"sqlite:///{data / 'central.sqlite3'}",
            jwt_secret="x" * 40,
            data_dir=data,
        )
    )
    central.services.engine.dispose()
    assert _mode(data) == 0o700
    assert _mode(data / "central.sqlite3") == 0o600
    assert _mode(data / "ca") == 0o700
    assert _mode(data / "ca" / "issuing.key") == 0o600


def _cli(*args: str, phrase: str = ROOT_PHRASE) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BALING_CA_ROOT_PASSPHRASE": phrase}
    env.pop("CENTRAL_CA_PASSPHRASE", None)
    return subprocess.run(
        [sys.executable, "-m", "baling.cli", "ca", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_root_stays_offline_and_the_intermediate_issues(tmp_path: Path) -> None:
    offline, online = tmp_path / "usb-stick", tmp_path / "central" / "ca"
    made = _cli("init", "--root-dir", str(offline))
    assert made.returncode == 0, made.stderr
    assert _mode(offline) == 0o700
    assert _mode(offline / "root.key") == 0o600
    # the root key is encrypted: useless without the passphrase
    with pytest.raises(TypeError):
        serialization.load_pem_private_key((offline / "root.key").read_bytes(), None)
    again = _cli("init", "--root-dir", str(offline))
    assert again.returncode == 1
    assert "got one already" in again.stderr
    wrong = _cli(
        "intermediate",
        "--root-dir",
        str(offline),
        "--out",
        str(online),
        phrase="not the passphrase",
    )
    assert wrong.returncode == 1
    assert "cannot load the offline root" in wrong.stderr
    done = _cli("intermediate", "--root-dir", str(offline), "--out", str(online))
    assert done.returncode == 0, done.stderr
    assert not (online / "root.key").exists()  # central never holds the root key
    assert _mode(online / "issuing.key") == 0o600
    ca = FleetCA.load(online)
    issued = ca.issue(make_csr(new_key(), "kiosk-9"), common_name="kiosk-9", now=NOW)
    leaf = x509.load_pem_x509_certificate(issued.pem)
    root = x509.load_pem_x509_certificate((offline / "root.pem").read_bytes())
    leaf.verify_directly_issued_by(ca.intermediate)
    ca.intermediate.verify_directly_issued_by(root)


def test_a_short_root_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CAError, match="at least 12 characters, got 5"):
        create_root(tmp_path / "r", now=NOW, passphrase=b"short")
    refused = _cli("init", "--root-dir", str(tmp_path / "r2"), phrase="short")
    assert refused.returncode == 1
    assert "expected a root passphrase" in refused.stderr


def test_a_server_certificate_comes_from_the_issuing_ca(tmp_path: Path) -> None:
    FleetCA.create(tmp_path / "ca", now=NOW)
    done = _cli(
        "server",
        "--ca-dir",
        str(tmp_path / "ca"),
        "--host",
        "ota.yyx.example",
        "--host",
        "127.0.0.1",
        "--out",
        str(tmp_path / "tls" / "ota-server"),
    )
    assert done.returncode == 0, done.stderr
    assert _mode(tmp_path / "tls" / "ota-server.key") == 0o600
    cert = x509.load_pem_x509_certificate(
        (tmp_path / "tls" / "ota-server.pem").read_bytes()
    )
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "ota.yyx.example" in names.value.get_values_for_type(x509.DNSName)
