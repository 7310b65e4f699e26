"""A node's side of an update, from central's ``ota`` command to commit.

The steps, each reported to central as an ``ota`` event (``fw_state``) with
the rollout's id:

``queued`` → ``deferred`` (the kind says why it must wait: a citizen at the
kiosk, an SOS, a junction's peak hours) → ``downloading`` (the director and
the image repository must agree; a delta from the running release when one
is signed; resumable) → ``installed`` (unpacked into the inactive slot and
switched, on trial; the node exits with :data:`RESTART` and ``baling
supervise`` starts it from the new slot) → ``committed`` once the node has
been healthy for ``ota_settle_s`` — or ``rolled_back`` when the deadline
passes first, or the new release does not even stay up (the supervisor
then rolls back by itself and leaves the reason in ``last.json``) — or
``failed`` when the release is refused.

The job survives restarts and ``kill -9`` in ``<data_dir>/ota/job.json``;
the download runs in a thread so the node keeps doing its work meanwhile.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tuf.api.exceptions import DownloadError, RepositoryError

from edge.errors import CommandError
from edge.ota.fetch import HttpFetcher
from edge.ota.slots import SlotError, Slots
from edge.ota.updater import Sources, UpdateRefusedError, fetch_release
from edge.protocol.release import DRILL

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tuf.ngclient.fetcher import FetcherInterface

    from edge.clock import Clock
    from edge.settings import NodeSettings

logger = logging.getLogger(__name__)

RESTART = 75  # exit status asking `baling supervise` to start the node again
RETRY_S = (10.0, 30.0, 120.0)  # download retries, then the update has failed
DEFER_S = 30.0  # how often a deferred update asks again
_RELEASE = re.compile(r"^baling-[a-z_]+-[0-9A-Za-z.+_-]{1,64}\.tar$")


ROOTS = ("image-root.json", "director-root.json")  # under <data_dir>/ota


def pin_roots(data_dir: Path, image_root: bytes, director_root: bytes) -> None:
    """Pin a node's update roots (what enrolment does) under ``data_dir/ota``."""
    ota = data_dir / "ota"
    ota.mkdir(parents=True, exist_ok=True)
    for name, data in zip(ROOTS, (image_root, director_root), strict=True):
        (ota / name).write_bytes(data)


@dataclass
class Job:
    """The update a node is working on (saved across restarts)."""

    release: str
    rollout: int | None = None
    state: str = "queued"
    reason: str = ""
    tries: int = 0
    version: str = ""


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class OtaClient:
    """The update loop a node's agent runs in its main loop."""

    def __init__(
        self,
        settings: NodeSettings,
        *,
        clock: Clock,
        emit: Callable[[dict[str, Any]], object],
        fetcher: FetcherInterface | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._emit = emit
        self.dir = settings.data_dir / "ota"
        self.job_path = self.dir / "job.json"
        self.slots = (
            None if settings.ota_slots_dir is None else Slots(settings.ota_slots_dir)
        )
        self._fetcher = fetcher
        self.job: Job | None = None
        self.restart = False  # the agent leaves its loop with RESTART
        self.received = 0  # bytes the last download cost
        self._worker: threading.Thread | None = None
        self._result: tuple[str, str] | None = None
        self._next_try = 0.0
        self._healthy_since: float | None = None
        self._last_health = ""
        data = _read_json(self.job_path)
        if data is not None:
            self.job = Job(**data)
        self._boot()

    # -- where things are ----------------------------------------------------------
    @property
    def fetcher(self) -> FetcherInterface:
        """The node's fetcher (its mTLS identity), made on first use."""
        if self._fetcher is None:
            self._fetcher = HttpFetcher(
                self.dir / "partial",
                ca_file=self.settings.ca_file,
                cert_file=self.settings.cert_file,
                key_file=self.settings.key_file,
            )
        return self._fetcher

    def sources(self) -> Sources:
        """The two repositories and the pinned roots.

        Raises:
            CommandError: OTA is not set up on this node (no URL or no roots).
        """
        base = self.settings.ota_url.rstrip("/")
        roots = self.dir / ROOTS[0], self.dir / ROOTS[1]
        if not base or not all(r.is_file() for r in roots):
            raise CommandError(
                f"OTA is not set up on this node: expected ota_url and "
                f"{roots[0].name}, {roots[1].name} in {self.dir}"
            )
        return Sources(
            image_url=f"{base}/image/metadata/",
            image_targets_url=f"{base}/image/targets/",
            director_url=f"{base}/director/{self.settings.device_id}/metadata/",
            image_root=roots[0].read_bytes(),
            director_root=roots[1].read_bytes(),
        )

    def running(self) -> dict[str, Any]:
        """release.json of the running slot ({} on the factory install)."""
        if self.slots is None or self.slots.active() is None:
            return {}
        return _read_json(self.slots.current / "release.json") or {}

    # -- the job ---------------------------------------------------------------------
    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.job is None:
            self.job_path.unlink(missing_ok=True)
            return
        tmp = self.job_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.job)), encoding="utf-8")
        tmp.replace(self.job_path)

    def _report(self, state: str, reason: str = "", **extra: Any) -> None:  # noqa: ANN401
        job = self.job
        body: dict[str, Any] = {
            "state": state,
            "release": job.release if job else "",
            "rollout": job.rollout if job else None,
            "version": job.version if job else "",
            "reason": reason[:200],
            **extra,
        }
        logger.info("OTA %s %s %s", body["release"], state, reason)
        self._emit(body)

    def _finish(self, state: str, reason: str = "") -> None:
        self._report(state, reason)
        self.job = None
        self._save()

    def _boot(self) -> None:
        """After a start: are we on trial, committed, or back on the old slot?"""
        trial = None if self.slots is None else self.slots.trial()
        if self.slots is not None and trial and self.slots.active() == trial.slot:
            if self.job is None:  # an update started by hand (no rollout)
                self.job = Job(release=str(self.running().get("name", "")))
            self.job.state, self.job.version = "trial", trial.version
            self._save()
            self._report("trial")
            return
        if self.job is None or self.job.state not in ("installed", "trial"):
            if self.job is not None and self.job.state == "downloading":
                self.job.state = "queued"  # killed mid-download: resume
                self._save()
            return
        if str(self.running().get("name", "")) == self.job.release:
            self._finish("committed")  # committed just before a restart
            return
        last = _read_json(self.slots.root / "last.json") if self.slots else None
        if self.slots is not None:
            (self.slots.root / "last.json").unlink(missing_ok=True)
        reason = str((last or {}).get("reason", "rolled back at start"))
        self._finish("rolled_back", reason)

    def command(self, args: dict[str, Any]) -> dict[str, Any]:
        """Central's ``ota`` command: {"release": name, "rollout": id}.

        Raises:
            CommandError: not a release of this kind, OTA not set up, no
                slots (not under ``baling supervise``), or another update on trial.
        """
        release, rollout = args.get("release"), args.get("rollout")
        if not isinstance(release, str) or not _RELEASE.fullmatch(release):
            raise CommandError(
                f"expected release baling-<kind>-<version>.tar, got {release!r}"
            )
        if not release.startswith(f"baling-{self.settings.kind}-"):
            raise CommandError(f"{release} is not a {self.settings.kind} release")
        if rollout is not None and not isinstance(rollout, int):
            raise CommandError(f"expected rollout as an integer, got {rollout!r}")
        if self.slots is None:
            raise CommandError("this node does not run under `baling supervise`")
        self.sources()  # OTA set up?
        if self.job is not None:
            if self.job.release == release:
                self.job.rollout = rollout
                self._save()
                return {"state": self.job.state}
            if self.job.state in ("installed", "trial"):
                raise CommandError(f"{self.job.release} is on trial; try later")
        self.job = Job(release=release, rollout=rollout)
        if self.running().get("name") == release:
            self._finish("committed", "already running")
            return {"state": "committed"}
        self._next_try = 0.0
        self._save()
        self._report("queued")
        return {"state": "queued"}

    # -- the loop --------------------------------------------------------------------
    def step(
        self, *, deferral: Callable[[], str | None], health: Callable[[], str | None]
    ) -> None:
        """One turn of the update (called from the agent's loop)."""
        job = self.job
        if job is None:
            return
        if job.state in ("queued", "deferred"):
            self._maybe_start(job, deferral)
        elif job.state == "downloading":
            self._collect(job)
        elif job.state == "trial":
            self._watch(health)

    def _maybe_start(self, job: Job, deferral: Callable[[], str | None]) -> None:
        now = self.clock.monotonic()
        if now < self._next_try:
            return
        reason = deferral()
        if reason:
            if job.state != "deferred" or job.reason != reason:
                job.state, job.reason = "deferred", reason
                self._save()
                self._report("deferred", reason)
            self._next_try = now + DEFER_S
            return
        job.state, job.reason = "downloading", ""
        self._save()
        self._report("downloading")
        self._result = None
        self._worker = threading.Thread(
            target=self._download, args=(job,), name="ota-download", daemon=True
        )
        self._worker.start()

    def _download(self, job: Job) -> None:
        """In the worker thread: fetch, check, install, switch."""
        assert self.slots is not None  # noqa: S101 - checked by command()
        before = getattr(self.fetcher, "received", 0)
        try:
            base = self.dir / "archives" / str(self.running().get("name", "-"))
            fetched = fetch_release(
                job.release,
                sources=self.sources(),
                cache=self.dir / "cache",
                fetcher=self.fetcher,
                base=base,
            )
            self.received = getattr(self.fetcher, "received", 0) - before
            slot = self.slots.install(fetched.path)
            meta = _read_json(self.slots.slots / slot / "release.json") or {}
            if self.settings.kind not in meta.get("kinds", []):
                self._result = ("failed", f"release fits {meta.get('kinds')}")
                return
            archives = self.dir / "archives"
            shutil.rmtree(archives, ignore_errors=True)
            archives.mkdir(parents=True)
            shutil.copyfile(
                fetched.path, archives / job.release
            )  # the next delta's base
            deadline = self.clock.now() + timedelta(
                seconds=self.settings.ota_deadline_s
            )
            job.version = str(meta.get("version", ""))
            self.slots.switch(slot, deadline=deadline)
            self._result = ("installed", "delta" if fetched.delta else "full")
        except (UpdateRefusedError, RepositoryError, SlotError, CommandError) as exc:
            self._result = ("failed", str(exc))
        except (DownloadError, OSError) as exc:
            self._result = ("retry", str(exc))

    def _collect(self, job: Job) -> None:
        if self._worker is None:  # restarted while downloading: start again
            job.state = "queued"
            return
        if self._worker.is_alive() or self._result is None:
            return
        self._worker = None
        state, reason = self._result
        if state == "installed":
            job.state = "installed"
            self._save()
            self._report("installed", bytes=self.received, via=reason)
            self.restart = True
        elif state == "retry" and job.tries < len(RETRY_S):
            job.state, job.reason = "queued", reason
            self._next_try = self.clock.monotonic() + RETRY_S[job.tries]
            job.tries += 1
            self._save()
            self._report("downloading", f"will retry: {reason}")
        else:
            self._finish("failed", reason)

    def _watch(self, health: Callable[[], str | None]) -> None:
        """On trial: commit after ``ota_settle_s`` of health, or roll back."""
        assert self.slots is not None  # noqa: S101 - a trial needs slots
        trial = self.slots.trial()
        if trial is None:  # settled elsewhere (by hand)
            self.job = None
            self._save()
            return
        problem = health()
        if self.running().get("drill") == DRILL:
            problem = "fault drill: this release is built to fail its health check"
        now = self.clock.monotonic()
        if problem is None:
            if self._healthy_since is None:
                self._healthy_since = now
            if now - self._healthy_since >= self.settings.ota_settle_s:
                self.slots.commit()
                self._finish("committed")
            return
        self._healthy_since, self._last_health = None, problem
        if self.clock.now() > datetime.fromisoformat(trial.deadline):
            self.slots.rollback()
            self._finish("rolled_back", f"health check failed: {problem}")
            self.restart = True
