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

from tuf.api.exceptions import DownloadError, RepositoryError
from tuf.ngclient import Updater

from edge.errors import EdgeError
from edge.ota.delta import DeltaError, apply_delta, delta_name

if TYPE_CHECKING:
    from tuf.api.metadata import TargetFile
    from tuf.ngclient.fetcher import FetcherInterface

logger = logging.getLogger(__name__)


class UpdateRefusedError(EdgeError):
    """A release this node must not install, with the reason."""


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the two repositories are, and what this node trusts."""

    image_url: str  # …/image/metadata/
    image_targets_url: str  # …/image/targets/
    director_url: str  # …/director/<device>/metadata/
    image_root: bytes
    director_root: bytes


@dataclass(frozen=True, slots=True)
class Fetched:
    """A verified release on disk, and whether a delta brought it."""

    path: Path
    delta: bool = False


def fetch_release(
    name: str,
    *,
    sources: Sources,
    cache: Path,
    fetcher: FetcherInterface,
    base: Path | None = None,
) -> Fetched:
    """Verify and download release ``name``; return the local file.

    With ``base`` (the release archive the node runs now), a delta from it
    is tried first when the image repository signs one; the patched result
    must match the release's length and SHA-256, and anything that goes
    wrong on that path falls back to the full release.

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
    if cached:
        return Fetched(Path(cached))
    if base is not None and base.is_file():
        patched = _by_delta(image, release, base, cache / "targets" / name)
        if patched is not None:
            return Fetched(patched, delta=True)
    return Fetched(Path(image.download_target(release)))


def _by_delta(
    image: Updater, release: TargetFile, base: Path, out: Path
) -> Path | None:
    """The release rebuilt from ``base`` and a signed delta, or None."""
    info = image.get_targetinfo(delta_name(release.path, base.name))
    if info is None:
        return None
    try:
        delta = Path(image.download_target(info, str(out.with_suffix(".delta"))))
        data = apply_delta(
            base.read_bytes(),
            delta.read_bytes(),
            sha256=release.hashes["sha256"],
            length=release.length,
        )
    except (DeltaError, RepositoryError, DownloadError, OSError, KeyError) as exc:
        logger.warning(
            "Delta for %s not usable (%s); fetching it whole", release.path, exc
        )
        return None
    finally:
        out.with_suffix(".delta").unlink(missing_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    cached = image.find_cached_target(release, str(out))
    return Path(cached) if cached else None
