"""Release bundles: a node kind's code and its metadata, packed reproducibly.

``build`` packs the packages a node kind runs (the edge runtime, the
``baling`` command and the kind's own package) with ``release.json``
(version, the kinds it fits, the oldest release it may replace) into a tar
whose bytes depend only on the files: sorted members, zero times and owners.
``publish`` adds it to the image repository, signed with the offline
targets key the release manager brings.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from central.errors import InvalidError
from central.ota.repository import Repository, load_signer
from edge.ota.delta import delta_name, make_delta
from edge.protocol.kinds import REGISTRY
from edge.protocol.release import DRILL

if TYPE_CHECKING:
    from datetime import datetime

KIND_PACKAGES = {code: (spec.package,) for code, spec in REGISTRY.items()}
ROOT = Path(__file__).resolve().parents[2]
DELTAS = 3  # earlier releases of a kind that get a delta to the new one


def release_name(kind: str, version: str) -> str:
    """The target name of a release."""
    return f"baling-{kind}-{version}.tar"


def build(
    kind: str,
    version: str,
    *,
    min_from: str,
    out: Path,
    source: Path = ROOT,
    drill: bool = False,
) -> Path:
    """Pack release ``version`` of ``kind``; return the archive.

    ``drill`` marks a fault-drill release: nodes that take it fail their
    health check on purpose, so operators can watch a rollout halt and the
    nodes roll back without shipping broken code.

    Raises:
        InvalidError: an unknown kind.
    """
    if kind not in KIND_PACKAGES:
        raise InvalidError(f"expected a kind of {sorted(KIND_PACKAGES)}, got {kind!r}")
    packages = ("edge", "baling", *KIND_PACKAGES[kind])
    files = sorted(
        p
        for package in packages
        for p in (source / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    meta = {
        "name": release_name(kind, version),
        "version": version,
        "kinds": [kind],
        "min_from": min_from,
        **({"drill": DRILL} if drill else {}),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / release_name(kind, version)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        entries = [("release.json", json.dumps(meta, sort_keys=True).encode())]
        entries += [(str(p.relative_to(source)), p.read_bytes()) for p in files]
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def publish(
    archive: Path,
    *,
    repo_dir: Path,
    offline: Path,
    online: Path,
    now: datetime,
    deltas: int = DELTAS,
) -> str:
    """Add a release to the image repository (created on first use).

    Deltas from the ``deltas`` latest earlier releases of the same kind are
    signed with it, so most nodes download a fraction of the release.
    """
    if (repo_dir / "metadata").exists():
        repo = Repository(repo_dir)
    else:
        repo = Repository.create(repo_dir, offline=offline, online=online, now=now)
    new = archive.read_bytes()
    kind = archive.name.split("-")[1]  # baling-<kind>-<version>.tar
    same_kind = [
        name
        for name in repo.load("targets").signed.targets
        if name.startswith(f"baling-{kind}-")
        and name.endswith(".tar")
        and name != archive.name
    ]
    earlier = same_kind[len(same_kind) - deltas :] if deltas else []
    files = {archive.name: new}
    for base in earlier:
        files[delta_name(archive.name, base)] = make_delta(repo.target_bytes(base), new)
    name = repo_dir.name
    repo.add_files(
        files,
        targets_key=load_signer(offline / f"{name}-targets.key"),
        snapshot_key=load_signer(online / f"{name}-snapshot.key"),
        timestamp_key=load_signer(online / f"{name}-timestamp.key"),
        now=now,
    )
    return archive.name
