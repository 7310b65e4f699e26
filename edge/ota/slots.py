"""A/B slots: install beside the running release, switch atomically, roll back.

Layout under ``root``: ``slots/a`` and ``slots/b`` each hold one release
(with its ``release.json``), ``current`` is a symlink to the running slot,
and ``trial.json`` exists while a new slot is on trial. Every step is
crash-safe, so ``kill -9`` at any moment leaves a node that starts:

* a release is unpacked into ``slots/<x>.tmp`` and renamed into place, so
  a slot is either absent or complete;
* ``trial.json`` is written (atomically) *before* ``current`` is switched,
  and ``current`` is replaced with :func:`os.replace`, which is atomic;
* on start, :meth:`Slots.recover` settles whatever was interrupted: a trial
  whose switch never happened is dropped; a trial that has booted too often
  or outlived its deadline without a commit is rolled back.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from edge.errors import EdgeError

Slot = Literal["a", "b"]


class SlotError(EdgeError):
    """A release that cannot be installed (bad archive, missing release.json)."""


@dataclass(frozen=True, slots=True)
class Trial:
    """A switch waiting for its health check."""

    previous: str
    slot: str
    version: str
    deadline: str  # ISO 8601
    boots: int = 0


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Slots:
    """The two install slots of a node."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.slots = root / "slots"
        self.current = root / "current"
        self.trial_path = root / "trial.json"
        self.slots.mkdir(parents=True, exist_ok=True)

    def active(self) -> Slot | None:
        """The slot ``current`` points at (None before the first install)."""
        try:
            target = self.current.readlink()
        except OSError:
            return None
        name = Path(target).name
        return name if name in ("a", "b") else None  # type: ignore[return-value]

    def inactive(self) -> Slot:
        """The slot an update goes into."""
        return "b" if self.active() == "a" else "a"

    def version(self, slot: str) -> str | None:
        """The release version in a slot, if it holds one."""
        try:
            data = json.loads(
                (self.slots / slot / "release.json").read_text(encoding="utf-8")
            )
        except (OSError, ValueError):
            return None
        value = data.get("version")
        return str(value) if value is not None else None

    def install(self, bundle: Path) -> Slot:
        """Unpack a release archive into the inactive slot.

        Raises:
            SlotError: not a tar archive, an unsafe member, or no release.json.
        """
        slot = self.inactive()
        tmp = self.slots / f"{slot}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            with tarfile.open(bundle) as tar:
                tar.extractall(tmp, filter="data")  # refuses absolute paths and ../
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SlotError(f"cannot unpack {bundle.name}: {exc}") from exc
        if not (tmp / "release.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            raise SlotError(f"{bundle.name} has no release.json")
        final = self.slots / slot
        old = self.slots / f"{slot}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.replace(old)
        tmp.replace(final)
        _fsync_dir(self.slots)
        shutil.rmtree(old, ignore_errors=True)
        return slot

    def _point(self, slot: str) -> None:
        if not slot:  # back to the factory install
            self.current.unlink(missing_ok=True)
            _fsync_dir(self.root)
            return
        link = self.root / "current.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(Path("slots") / slot)
        link.replace(self.current)  # atomic: current is always one slot or the other
        _fsync_dir(self.root)

    def switch(self, slot: str, *, deadline: datetime) -> None:
        """Put ``slot`` on trial and make it current (the node then restarts).

        The first update of a node leaves the factory install (``previous``
        empty: no ``current`` link) to roll back to.
        """
        trial = Trial(
            previous=self.active() or "",
            slot=slot,
            version=self.version(slot) or "",
            deadline=deadline.isoformat(),
        )
        _write_json(self.trial_path, asdict(trial))
        self._point(slot)

    def trial(self) -> Trial | None:
        """The trial in progress, if any."""
        try:
            data = json.loads(self.trial_path.read_text(encoding="utf-8"))
            return Trial(**data)
        except (OSError, ValueError, TypeError):
            return None

    def commit(self) -> None:
        """The new slot is healthy: keep it."""
        self.trial_path.unlink(missing_ok=True)
        _fsync_dir(self.root)

    def rollback(self) -> str | None:
        """Go back to the previous slot and return it.

        "" is the factory install; None means there was no trial.
        """
        trial = self.trial()
        if trial is None:
            return None
        self._point(trial.previous)
        self.commit()
        return trial.previous

    def recover(
        self, now: datetime, *, max_boots: int = 2
    ) -> Literal["none", "trial", "dropped", "rolled_back"]:
        """Settle an interrupted update at start; count this boot of a trial."""
        shutil.rmtree(self.slots / "a.tmp", ignore_errors=True)
        shutil.rmtree(self.slots / "b.tmp", ignore_errors=True)
        trial = self.trial()
        if trial is None:
            return "none"
        if self.active() != trial.slot:  # the switch itself never happened
            self.commit()
            return "dropped"
        if trial.boots >= max_boots or now > datetime.fromisoformat(trial.deadline):
            self.rollback()
            return "rolled_back"
        _write_json(self.trial_path, {**asdict(trial), "boots": trial.boots + 1})
        return "trial"
