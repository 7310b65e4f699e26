"""Fetch a release the Uptane way: the director and the image repository agree.

python-tuf's ngclient does the TUF work (``refresh``, ``get_targetinfo``,
``download_target``): signatures, thresholds, versions that never go back,
expiry, snapshot consistency. On top, a release is fetched only when the
director's per-device metadata names it *and* the image repository (offline
targets key) has it with the same length and hashes. Fetchers are
pluggable: over HTTPS with the node's mTLS identity in the field, from a
directory in tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from edge.errors import EdgeError

if TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger(__name__)


class UpdateRefusedError(EdgeError):
    """A release this node must not install, with the reason."""


class DirectoryFetcher(FetcherInterface):
    """Serves ``file``-like URLs from a directory (tests and USB-stick updates)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = self.root / urlparse(url).path.lstrip("/")
        if not path.is_file():
            raise DownloadHTTPError(f"{url} not found", 404)
        yield path.read_bytes()


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the two repositories are, and what this node trusts."""

    image_url: str  # …/image/metadata/
    image_targets_url: str  # …/image/targets/
    director_url: str  # …/director/<device>/metadata/
    image_root: bytes
    director_root: bytes


def fetch_release(
    name: str, *, sources: Sources, cache: Path, fetcher: FetcherInterface
) -> Path:
    """Verify and download release ``name``; return the local file.

    Raises:
        UpdateRefusedError: the director does not assign it to this node, the
            image repository does not have it, or the two disagree.
        tuf.api.exceptions.RepositoryError: the metadata was tampered with,
            rolled back, expired, or mixed and matched (TUF's own refusals).
    """
    (cache / "director").mkdir(parents=True, exist_ok=True)
    (cache / "image").mkdir(parents=True, exist_ok=True)
    (cache / "targets").mkdir(parents=True, exist_ok=True)
    director = Updater(
        str(cache / "director"),
        sources.director_url,
        fetcher=fetcher,
        bootstrap=sources.director_root,
    )
    director.refresh()
    assigned = director.get_targetinfo(name)
    if assigned is None:
        raise UpdateRefusedError(f"the director does not assign {name} to this node")
    image = Updater(
        str(cache / "image"),
        sources.image_url,
        str(cache / "targets"),
        sources.image_targets_url,
        fetcher=fetcher,
        bootstrap=sources.image_root,
    )
    image.refresh()
    release = image.get_targetinfo(name)
    if release is None:
        raise UpdateRefusedError(f"{name} is not in the image repository")
    if release.length != assigned.length or release.hashes != assigned.hashes:
        raise UpdateRefusedError(
            f"the director and the image repository disagree on {name}"
        )
    cached = image.find_cached_target(release)
    return Path(cached or image.download_target(release))
