"""TUF repositories for releases: the image repository and the director.

Built on python-tuf's Metadata API. The **image repository** holds every
release: its root and targets keys are *offline* (kept by the release
manager, passed in only to publish), its snapshot and timestamp keys are
*online* (central re-signs them to keep them fresh). The **director**, in
the Uptane spirit, holds one small repository per device listing the one
release that device should install, signed by online keys. A node installs
a release only when both agree on it (same length and hashes): the online
keys alone cannot put an image on a node, and a stolen release-manager
laptop alone cannot make a node install anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.exceptions import StorageError
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

if TYPE_CHECKING:
    from pathlib import Path

ROLES = ("root", "targets", "snapshot", "timestamp")
EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}


def _save_key(path: Path, key: ed25519.Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def load_signer(path: Path) -> CryptoSigner:
    """A signer from a PEM Ed25519 key file."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)  # noqa: S101 - our own files
    return CryptoSigner(key, SSlibKey.from_crypto(key.public_key()))


def _new_signer(path: Path) -> CryptoSigner:
    key = ed25519.Ed25519PrivateKey.generate()
    _save_key(path, key)
    return load_signer(path)


@dataclass
class Repository:
    """One TUF repository on disk (``metadata/`` and ``targets/``)."""

    directory: Path

    @property
    def metadata(self) -> Path:
        """Where the metadata files are served from."""
        return self.directory / "metadata"

    @property
    def targets(self) -> Path:
        """Where target files are served from (``<sha256>.<name>``)."""
        return self.directory / "targets"

    def _path(self, role: str, version: int | None = None) -> Path:
        if role == "timestamp":
            return self.metadata / "timestamp.json"
        return self.metadata / f"{version}.{role}.json"

    def load(self, role: str) -> Metadata[Any]:
        """The newest metadata of ``role``."""
        if role == "timestamp":
            return Metadata.from_file(str(self._path("timestamp")))
        versions = sorted(
            int(p.name.split(".")[0]) for p in self.metadata.glob(f"*.{role}.json")
        )
        return Metadata.from_file(str(self._path(role, versions[-1])))

    def _write(self, md: Metadata[Any], role: str) -> None:
        self.metadata.mkdir(parents=True, exist_ok=True)
        path = self._path(role, md.signed.version)
        tmp = path.with_suffix(".tmp")
        md.to_file(str(tmp), JSONSerializer(compact=False))
        tmp.replace(path)

    def root_bytes(self) -> bytes:
        """Version 1 of root: what a node is enrolled with (its trust anchor)."""
        return self._path("root", 1).read_bytes()

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        offline: Path,
        online: Path,
        now: datetime,
        online_roles: tuple[str, ...] = ("snapshot", "timestamp"),
    ) -> Repository:
        """A new repository; root (and offline roles') keys go to ``offline``."""
        repo = cls(directory)
        signers = {
            role: _new_signer(
                (online if role in online_roles else offline)
                / f"{directory.name}-{role}.key"
            )
            for role in ROLES
        }
        root = Root(expires=now + EXPIRY["root"], consistent_snapshot=True)
        for role, signer in signers.items():
            root.add_key(signer.public_key, role)
        root_md = Metadata(root)
        root_md.sign(signers["root"])
        repo._write(root_md, "root")
        targets_md = Metadata(Targets(expires=now + EXPIRY["targets"]))
        targets_md.sign(signers["targets"])
        repo._write(targets_md, "targets")
        repo._refresh(signers["snapshot"], signers["timestamp"], now=now)
        return repo

    def _refresh(
        self, snapshot_key: CryptoSigner, timestamp_key: CryptoSigner, *, now: datetime
    ) -> None:
        targets = self.load("targets")
        try:
            snapshot_version = self.load("snapshot").signed.version + 1
        except (IndexError, OSError, StorageError):
            snapshot_version = 1
        snapshot = Snapshot(
            version=snapshot_version,
            expires=now + EXPIRY["snapshot"],
            meta={"targets.json": MetaFile(version=targets.signed.version)},
        )
        snap_md = Metadata(snapshot)
        snap_md.sign(snapshot_key)
        self._write(snap_md, "snapshot")
        try:
            ts_version = self.load("timestamp").signed.version + 1
        except (OSError, StorageError):
            ts_version = 1
        ts_md = Metadata(
            Timestamp(
                version=ts_version,
                expires=now + EXPIRY["timestamp"],
                snapshot_meta=MetaFile(version=snapshot_version),
            )
        )
        ts_md.sign(timestamp_key)
        self._write(ts_md, "timestamp")

    def add_target(
        self,
        name: str,
        *,
        data: bytes | None = None,
        info: TargetFile | None = None,
        targets_key: CryptoSigner,
        snapshot_key: CryptoSigner,
        timestamp_key: CryptoSigner,
        now: datetime,
        replace_all: bool = False,
    ) -> TargetFile:
        """Publish a target (its bytes, or only its length and hashes)."""
        if info is None:
            assert data is not None  # noqa: S101 - one of the two is given
            info = self._store(name, data)
        self._sign_targets(
            {name: info},
            targets_key=targets_key,
            snapshot_key=snapshot_key,
            timestamp_key=timestamp_key,
            now=now,
            replace_all=replace_all,
        )
        return info

    def add_files(
        self,
        files: dict[str, bytes],
        *,
        targets_key: CryptoSigner,
        snapshot_key: CryptoSigner,
        timestamp_key: CryptoSigner,
        now: datetime,
    ) -> None:
        """Publish several files under one new targets version."""
        self._sign_targets(
            {name: self._store(name, data) for name, data in files.items()},
            targets_key=targets_key,
            snapshot_key=snapshot_key,
            timestamp_key=timestamp_key,
            now=now,
        )

    def target_bytes(self, name: str) -> bytes:
        """A published file's bytes (kept under its SHA-256, as served).

        Raises:
            KeyError: no such target.
        """
        info = self.load("targets").signed.targets[name]
        return (self.targets / f"{info.hashes['sha256']}.{name}").read_bytes()

    def _store(self, name: str, data: bytes) -> TargetFile:
        self.targets.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        (self.targets / f"{digest}.{name}").write_bytes(data)
        return TargetFile.from_data(name, data, ["sha256"])

    def _sign_targets(
        self,
        new: dict[str, TargetFile],
        *,
        targets_key: CryptoSigner,
        snapshot_key: CryptoSigner,
        timestamp_key: CryptoSigner,
        now: datetime,
        replace_all: bool = False,
    ) -> None:
        md = self.load("targets")
        targets: Targets = md.signed
        if replace_all:
            targets.targets.clear()
        targets.targets.update(new)
        targets.version += 1
        targets.expires = now + EXPIRY["targets"]
        md.signatures.clear()
        md.sign(targets_key)
        self._write(md, "targets")
        self._refresh(snapshot_key, timestamp_key, now=now)
