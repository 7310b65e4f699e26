"""``/ota`` over the fleet's mutual TLS: fleet certificates only, own director only.

The TUF repositories nodes update from (``<data_dir>/ota``: ``image/...``
shared by all, ``director/<device>/...`` one per device) are served here
to a client that presents a certificate from the fleet CA, not revoked in
the CRL (re-read when the file changes). A device may read only its own
director repository: the path's device id must equal its certificate's
common name (403 otherwise). ``Range: bytes=N-`` requests are answered with
206, so an interrupted target download resumes (:mod:`edge.ota.fetch`).

uvicorn does not hand the peer certificate to the application, so this is
the standard library's threading HTTP server with an ``ssl`` context, kept
small; what the files say (TUF metadata, signed targets) is the OTA
service's, and the plain HTTP app serves ``/ota`` only under the
``ota_plain_http`` dev setting (:mod:`central.app`).
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    import socket
    from pathlib import Path

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_DIRECTOR = re.compile(r"^director/([^/]+)/")


def peer_name(sock: ssl.SSLSocket) -> str:
    """The common name of the client certificate on ``sock`` ('' if none)."""
    cert: Any = sock.getpeercert()
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


class _Handler(BaseHTTPRequestHandler):
    server: OtaServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401
        logger.debug("ota %s %s", self.client_address[0], format % args)

    def _refuse(self, code: HTTPStatus, why: str) -> None:
        body = why.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = unquote(urlparse(self.path).path)
        if not path.startswith("/ota/"):
            self._refuse(HTTPStatus.NOT_FOUND, f"expected /ota/..., got {path[:80]}")
            return
        rel = path.removeprefix("/ota/")
        target = (self.server.root / rel).resolve()
        if not target.is_relative_to(self.server.root):
            self._refuse(HTTPStatus.NOT_FOUND, f"no such file: {rel[:120]}")
            return
        # decide on the resolved path: "image/../director/<other>/" is a director
        inside = target.relative_to(self.server.root).as_posix() + (
            "/" if target.is_dir() else ""
        )
        who = peer_name(self.connection)
        director = _DIRECTOR.match(inside)
        if (director and director.group(1) != who) or inside == "director/":
            self._refuse(
                HTTPStatus.FORBIDDEN,
                f"expected the director of {who!r}, got a request for {inside[:80]!r}",
            )
            return
        if not target.is_file():
            self._refuse(HTTPStatus.NOT_FOUND, f"no such file: {rel[:120]}")
            return
        self._send_file(target)

    def _send_file(self, target: Path) -> None:
        size = target.stat().st_size
        start, end = 0, size - 1
        wanted = self.headers.get("Range")
        if wanted:
            match = _RANGE.fullmatch(wanted.strip())
            if (
                match is None
                or int(match.group(1)) >= max(size, 1)
                or (match.group(2) and int(match.group(2)) < int(match.group(1)))
            ):  # unsatisfiable, or reversed ("bytes=10-2": a negative length)
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(match.group(1))
            end = min(int(match.group(2) or size - 1), size - 1)
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        with target.open("rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


# At most this many connections are served at once (each has its thread);
# more are closed at once, and a handshake may take HANDSHAKE_S: a peer
# that opens sockets and never speaks TLS cannot pile up threads.
MAX_CONNECTIONS = 64
HANDSHAKE_S = 10.0
IDLE_S = 30.0


class OtaServer(ThreadingHTTPServer):
    """HTTPS for ``/ota`` that requires a fleet certificate."""

    daemon_threads = True

    def __init__(
        self,
        root: Path,
        *,
        host: str,
        port: int,
        ca_file: Path,
        cert_file: Path,
        key_file: Path,
        crl_file: Path | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.root = root.resolve()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._files = (ca_file, cert_file, key_file, crl_file)
        self._crl_mtime = -1.0
        self._context = self._make_context()
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    def _make_context(self) -> ssl.SSLContext:
        ca_file, cert_file, key_file, crl_file = self._files
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(cert_file, key_file)
        context.load_verify_locations(cafile=str(ca_file))
        if crl_file is not None and crl_file.exists():
            context.load_verify_locations(cafile=str(crl_file))
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
            self._crl_mtime = crl_file.stat().st_mtime
        return context

    def _context_now(self) -> ssl.SSLContext:
        crl_file = self._files[3]
        if (
            crl_file is not None
            and crl_file.exists()
            and crl_file.stat().st_mtime != self._crl_mtime
        ):
            self._context = self._make_context()  # a node was retired
        return self._context

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept; the TLS handshake happens on the request's own thread."""
        sock, addr = self.socket.accept()
        wrapped = self._context_now().wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, addr

    def process_request(self, request: Any, client_address: Any) -> None:  # noqa: ANN401
        """Serve on a thread of its own while a slot is free; else close it."""
        if not self._slots.acquire(blocking=False):
            logger.warning(
                "OTA: %d connections open; closed one from %s",
                MAX_CONNECTIONS,
                client_address[0],
            )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:  # noqa: ANN401
        """The request's thread; its slot is freed when it ends."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:  # noqa: ANN401
        """Complete the handshake (a refused certificate ends here), then serve."""
        try:
            request.settimeout(HANDSHAKE_S)
            request.do_handshake()
            request.settimeout(IDLE_S)
        except (ssl.SSLError, OSError) as exc:
            logger.info("OTA client %s refused: %s", client_address[0], exc)
            return
        super().finish_request(request, client_address)

    def start(self) -> None:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="ota-tls", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
