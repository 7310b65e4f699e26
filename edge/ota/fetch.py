"""Fetching OTA files over HTTP(S) with the node's mTLS identity, resumably.

python-tuf's ngclient asks a :class:`FetcherInterface` for bytes and does
all the checking itself (lengths, hashes, signatures). This fetcher adds
what a pole on a mobile link needs:

* the node's fleet certificate and key on the TLS connection (mutual TLS),
  with central's CA as the only trust;
* resumption: a target file (content-addressed under consistent snapshots,
  so it never changes under its URL) is written to a ``.part`` file as it
  arrives; a later attempt — after a dropped link or a ``kill -9`` — asks for
  the rest with an HTTP ``Range`` and only re-fetches what is missing;
* a byte counter, so the node can report what an update cost.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import httpx2
from tuf.api.exceptions import DownloadError, DownloadHTTPError
from tuf.ngclient.fetcher import FetcherInterface

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
RETRIES = 2  # connection attempts retried at once; OtaClient retries the rest


def tls_context(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> ssl.SSLContext:
    """The TLS context of a node's HTTPS requests to central.

    Central's CA is the only trust where one is given (the system's store
    otherwise); the node's certificate and key, where given, are presented
    for mutual TLS.
    """
    ctx = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    if cert_file is not None and key_file is not None:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


class HttpFetcher(FetcherInterface):
    """HTTP(S) with optional client certificate; resumes target downloads.

    httpx's errors never leave :meth:`_fetch`: a transport failure or a bad
    URL becomes tuf's :class:`DownloadError`, an unexpected status its
    :class:`DownloadHTTPError`, which is what ngclient's callers handle.
    """

    def __init__(
        self,
        partial_dir: Path,
        *,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.partial_dir = partial_dir
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self.client = httpx2.Client(
            timeout=httpx2.Timeout(timeout_s),
            # An update is a few files hours apart: no idle connection is kept
            # (nor left for the garbage collector to find open).
            transport=httpx2.HTTPTransport(
                verify=tls_context(ca_file, cert_file, key_file),
                retries=RETRIES,
                limits=httpx2.Limits(max_keepalive_connections=0),
            ),
            follow_redirects=False,
        )
        self.received = 0  # bytes over the wire, resumed parts not counted twice

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def _partial(self, url: str) -> Path | None:
        """The ``.part`` file of a target URL; metadata is never resumed."""
        if "/targets/" not in urlparse(url).path:
            return None
        name = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self.partial_dir / f"{name}.part"

    def _fetch(self, url: str) -> Iterator[bytes]:
        part = self._partial(url)
        have = part.stat().st_size if part is not None and part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with self.client.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 416 and part is not None:  # noqa: PLR2004 - range beyond the file
                    part.unlink(missing_ok=True)
                    resumed = None
                else:
                    if resp.status_code not in (200, 206):
                        msg = f"{url}: HTTP {resp.status_code}"
                        raise DownloadHTTPError(msg, resp.status_code)
                    partial = resp.status_code == 206 and part is not None  # noqa: PLR2004
                    resumed = have if partial else 0
                    yield from self._stream(resp, part, resumed)
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise DownloadError(f"cannot fetch {url}: {exc}") from exc
        if resumed is None:  # the part was stale: start the file again
            yield from self._fetch(url)

    def _stream(
        self,
        resp: httpx2.Response,
        part: Path | None,
        have: int,
    ) -> Iterator[bytes]:
        if part is None:
            for chunk in resp.iter_bytes(CHUNK):
                self.received += len(chunk)
                yield chunk
            return
        if have:
            logger.info("Resuming %s at byte %d", part.name, have)
            yield part.read_bytes()
        with part.open("ab" if have else "wb") as fh:
            try:
                for chunk in resp.iter_bytes(CHUNK):
                    self.received += len(chunk)
                    fh.write(chunk)
                    fh.flush()
                    yield chunk
            except (httpx2.HTTPError, OSError) as exc:
                raise DownloadError(f"download broke off: {exc}") from exc
        part.unlink(missing_ok=True)  # complete: ngclient checks it and keeps it


class DirectoryFetcher(FetcherInterface):
    """Serves URLs from a directory (tests and USB-stick updates)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.received = 0

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = self.root / urlparse(url).path.lstrip("/")
        if not path.is_file():
            raise DownloadHTTPError(f"{url} not found", 404)
        data = path.read_bytes()
        self.received += len(data)
        yield data
