"""Red-team suspicions about ``/ota`` over mutual TLS, played against the server.

A reversed ``Range: bytes=10-2`` gave a negative ``Content-Length``; a peer
that opened sockets and never spoke TLS held one thread each for 30 s. The
server here is central's :class:`OtaServer` on loopback with a fleet CA made
in the test's directory; the clients are the standard library's ``ssl``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from central.ota.server import OtaServer
from provisioning.ca import FleetCA, key_pem, make_csr, new_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BLOB = bytes(range(256)) * 4


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[OtaServer, ssl.SSLContext]]:
    now = datetime.now(UTC)
    ca = FleetCA.create(tmp_path / "ca", now=now)
    files = {}
    for name, is_server in (("server", True), ("kiosk-1", False)):
        key = new_key()
        issued = ca.issue(
            make_csr(key, name),
            common_name=name,
            now=now,
            server=is_server,
            hosts=("127.0.0.1",) if is_server else (),
        )
        (tmp_path / f"{name}.pem").write_bytes(issued.chain_pem)
        (tmp_path / f"{name}.key").write_bytes(key_pem(key))
        files[name] = (tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
    (tmp_path / "ca.pem").write_bytes(ca.bundle_pem)
    root = tmp_path / "ota"
    (root / "image").mkdir(parents=True)
    (root / "image" / "blob.bin").write_bytes(BLOB)
    server = OtaServer(
        root,
        host="127.0.0.1",
        port=0,
        ca_file=tmp_path / "ca.pem",
        cert_file=files["server"][0],
        key_file=files["server"][1],
        max_connections=8,
    )
    server.start()
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    client.load_cert_chain(*files["kiosk-1"])
    try:
        yield server, client
    finally:
        server.stop()


def _get(
    server: OtaServer, client: ssl.SSLContext, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", server.server_address[1], context=client, timeout=10
    )
    try:
        conn.request("GET", "/ota/image/blob.bin", headers=headers)
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_a_reversed_range_is_not_satisfiable(
    served: tuple[OtaServer, ssl.SSLContext],
) -> None:
    server, client = served
    status, headers, body = _get(server, client, {"Range": "bytes=10-2"})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(BLOB)}"
    assert body == b""
    status, _headers, body = _get(server, client, {"Range": "bytes=10-19"})
    assert (status, body) == (206, BLOB[10:20])


def test_silent_sockets_cannot_pile_up_threads(
    served: tuple[OtaServer, ssl.SSLContext],
) -> None:
    server, client = served
    before = threading.active_count()
    silent = [
        socket.create_connection(("127.0.0.1", server.server_address[1]))
        for _ in range(40)
    ]
    try:
        time.sleep(1.0)
        assert threading.active_count() - before <= 8
    finally:
        for sock in silent:
            sock.close()
    # once they are gone, a node is served again
    deadline = time.monotonic() + 15
    while True:
        try:
            status, _h, body = _get(server, client, {})
            break
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert (status, body) == (200, BLOB)
