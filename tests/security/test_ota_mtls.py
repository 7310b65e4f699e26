"""``/ota`` over the fleet's mutual TLS (issue 16, finding 14).

Played with real TLS clients — curl (a third-party client), the standard
library's ``ssl``/``http.client`` for raw paths, and the node's own
:class:`edge.ota.fetch.HttpFetcher` — against a secured site: no
certificate, a stranger's certificate, another device's director and
path tricks are refused; a node gets its own director and the shared image
repository (resumable with ``Range``); a retired node is refused; the plain
HTTP app no longer serves ``/ota`` at all.
"""

from __future__ import annotations

import http.client
import shutil
import ssl
import subprocess
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from siteworld import Node, Site, running_site

from edge.ota.fetch import HttpFetcher
from provisioning.ca import FleetCA, key_pem, make_csr, new_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def secure_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_url) as site:
        yield site


pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
CURL = shutil.which("curl")


def _curl(site: Site, path: str, node: Node | None, *extra: str) -> tuple[int, bytes]:
    """(HTTP status or 0 when TLS refused us, body) as curl sees it."""
    assert CURL is not None
    cmd = [CURL, "-s", "-o", "-", "-w", "\n%{http_code}", "--cacert", str(site.ca_file)]
    if node is not None:
        cmd += ["--cert", str(node.tls.cert_file), "--key", str(node.tls.key_file)]
    done = subprocess.run(
        [*cmd, *extra, f"https://127.0.0.1:{site.secure.ota_port}{path}"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    body, _, code = done.stdout.rpartition(b"\n")
    return int(code or b"0"), body


def _raw(site: Site, node: Node, path: str) -> int:
    """GET ``path`` unnormalised (http.client sends it as given)."""
    context = ssl.create_default_context(cafile=str(site.ca_file))
    context.load_cert_chain(node.tls.cert_file, node.tls.key_file)  # type: ignore[arg-type]
    conn = http.client.HTTPSConnection(
        "127.0.0.1", site.secure.ota_port, context=context, timeout=10
    )
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def _metadata(site: Site, device: str) -> tuple[str, bytes]:
    folder = site.secure.settings.data_dir / "ota" / "director" / device / "metadata"
    file = min(p for p in folder.iterdir() if p.suffix == ".json")
    return f"/ota/director/{device}/metadata/{file.name}", file.read_bytes()


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_only_a_fleet_certificate_reads_and_only_its_own_director(
    secure_site: Site, tmp_path: Path
) -> None:
    site = secure_site
    a, b = site.enrol("kiosk"), site.enrol("kiosk")
    own, own_bytes = _metadata(site, a.device_id)
    other, _ = _metadata(site, b.device_id)

    assert _curl(site, own, None)[0] == 0  # no certificate: the handshake fails
    stranger = FleetCA.create(tmp_path / "stranger", now=datetime.now(UTC))
    key = new_key()
    forged = stranger.issue(
        make_csr(key, a.device_id), common_name=a.device_id, now=datetime.now(UTC)
    )
    (tmp_path / "s.pem").write_bytes(forged.chain_pem)
    (tmp_path / "s.key").write_bytes(key_pem(key))
    assert (
        _curl(
            site,
            own,
            None,
            "--cert",
            str(tmp_path / "s.pem"),
            "--key",
            str(tmp_path / "s.key"),
        )[0]
        == 0
    )

    status, body = _curl(site, own, a)
    assert (status, body) == (200, own_bytes)
    status, body = _curl(site, other, a)
    assert status == 403
    assert b"expected the director of" in body
    assert _curl(site, f"/ota/director/{b.device_id}/", a)[0] == 403
    # path tricks resolve before the check
    assert _raw(
        site, a, f"/ota/image/../director/{b.device_id}/metadata/root.json"
    ) in (403, 404)
    assert _raw(
        site, a, f"/ota/image/..%2fdirector/{b.device_id}/metadata/1.root.json"
    ) in (403, 404)
    assert _raw(site, a, "/ota/../central/ca/issuing.key") == 404
    assert _raw(site, a, "/ota/../../certs/server.key") == 404

    # the image repository is shared by every node; resumable with Range
    image = site.secure.settings.data_dir / "ota" / "image" / "metadata" / "1.root.json"
    status, body = _curl(site, "/ota/image/metadata/1.root.json", b)
    assert (status, body) == (200, image.read_bytes())
    status, body = _curl(
        site, "/ota/image/metadata/1.root.json", b, "-H", "Range: bytes=10-"
    )
    assert (status, body) == (206, image.read_bytes()[10:])

    # the plain HTTP app serves no /ota on a secured site
    assert site.client.get(own).status_code == 404


def test_the_nodes_own_fetcher_works_and_a_retired_node_is_refused(
    secure_site: Site, tmp_path: Path
) -> None:
    site = secure_site
    node = site.enrol("kiosk")
    own, own_bytes = _metadata(site, node.device_id)
    fetcher = HttpFetcher(
        tmp_path / "partial",
        ca_file=node.tls.ca_file,
        cert_file=node.tls.cert_file,
        key_file=node.tls.key_file,
    )
    url = f"https://127.0.0.1:{site.secure.ota_port}{own}"
    assert b"".join(fetcher.fetch(url)) == own_bytes
    answer = site.client.post(
        f"/api/v1/devices/{node.device_id}/retire", headers=site.login("admin")
    )
    assert answer.status_code == 200, answer.text
    if CURL is not None:
        assert _curl(site, own, node)[0] == 0  # the CRL is re-read on change
