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
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import urllib3
from tuf.api.exceptions import DownloadError, DownloadHTTPError
from tuf.ngclient.fetcher import FetcherInterface

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024


class HttpFetcher(FetcherInterface):
    """HTTP(S) with optional client certificate; resumes target downloads."""

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
        tls: dict[str, str] = {}
        if ca_file is not None:
            tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": str(ca_file)}
        if cert_file is not None and key_file is not None:
            tls |= {"cert_file": str(cert_file), "key_file": str(key_file)}
        self.pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=urllib3.Retry(total=2, backoff_factor=0.5, redirect=False),
            **tls,  # type: ignore[arg-type]
        )
        self.received = 0  # bytes over the wire, resumed parts not counted twice

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
            resp = self.pool.request("GET", url, headers=headers, preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise DownloadError(f"cannot fetch {url}: {exc}") from exc
        if resp.status == 416 and part is not None:  # noqa: PLR2004 - range beyond the file
            resp.release_conn()
            part.unlink(missing_ok=True)
            yield from self._fetch(url)
            return
        if resp.status not in (200, 206):
            resp.release_conn()
            raise DownloadHTTPError(f"{url}: HTTP {resp.status}", resp.status)
        return_partial = resp.status == 206 and part is not None  # noqa: PLR2004
        try:
            yield from self._stream(resp, part, have if return_partial else 0)
        finally:
            resp.release_conn()

    def _stream(
        self,
        resp: urllib3.BaseHTTPResponse,
        part: Path | None,
        have: int,
    ) -> Iterator[bytes]:
        if part is None:
            for chunk in resp.stream(CHUNK):
                self.received += len(chunk)
                yield chunk
            return
        if have:
            logger.info("Resuming %s at byte %d", part.name, have)
            yield part.read_bytes()
        with part.open("ab" if have else "wb") as fh:
            try:
                for chunk in resp.stream(CHUNK):
                    self.received += len(chunk)
                    fh.write(chunk)
                    fh.flush()
                    yield chunk
            except (urllib3.exceptions.HTTPError, OSError) as exc:
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
