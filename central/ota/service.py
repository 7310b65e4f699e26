"""The OTA service's shell: rollouts in the database, the director, the nodes.

A rollout picks its devices from the registry (kind, site, group, current
version; pinned devices never), splits them into waves with the pure
planner (:mod:`central.ota.rollout`) and, on every tick, does what the
planner decides: assign a wave — each node's director repository names the
release, and the node is told to look — or pause, cancel, finish. Nodes
report each step as ``ota`` events (``committed`` after their health check,
``rolled_back`` or ``failed`` otherwise); the ingest worker hands them here
inside its transaction.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from central.errors import ConflictError, InvalidError, NotFoundError
from central.messaging.outbound import Outbound, Sender
from central.models import Device, as_utc
from central.ota import rollout as planner
from central.ota.balena import BalenaError, BalenaFleet
from central.ota.models import Pin, RolloutNode, RolloutRow
from central.ota.release import build, publish, release_name
from central.ota.repository import Repository, load_signer
from edge.ota.delta import delta_name

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    import sqlalchemy as sa

    from edge.clock import Clock

logger = logging.getLogger(__name__)

TYPES = frozenset({"ota"})
VERSION = re.compile(r"^[0-9]+(\.[0-9]+){1,3}([.+-][0-9A-Za-z.]{1,32})?$")
DONE = {"committed": "succeeded", "rolled_back": "failed", "failed": "failed"}


class OtaService:
    """Rollouts, pins and the per-device director."""

    types = TYPES

    def __init__(
        self,
        *,
        clock: Clock,
        data_dir: Path,
        sender: Sender | None = None,
        tick_s: float = 5.0,
        release_keys: Path | None = None,
        balena: BalenaFleet | None = None,
    ) -> None:
        """Build the service over its collaborators.

        Args:
            clock: the time of waves, timeouts and audit records.
            data_dir: the director's and image repositories live under
                ``<data_dir>/ota``, their keys beside it.
            sender: what a commit sends (update commands, console updates,
                audit); none sends nothing, for callers that read only.
            tick_s: how often :meth:`tick` acts on the rollouts.
            release_keys: the offline targets key (demo only).
            balena: deliver through balena-cloud instead of the director.
        """
        self.clock = clock
        self.sender = sender or Sender(clock=clock)
        self.tick_s = tick_s
        self.release_keys = release_keys  # the offline targets key: demo only
        self.balena = balena  # deliver through balena-cloud instead of the director
        self.root = data_dir / "ota"
        self.image_dir = self.root / "image"
        self.director_keys = data_dir / "ota-director-keys"
        self.online_keys = data_dir / "ota-online-keys"  # image snapshot, timestamp
        self._next_tick = 0.0

    # -- the director ------------------------------------------------------------
    def director(self, device: str) -> Repository:
        """The device's director repository (made on first use, online keys)."""
        directory = self.root / "director" / device
        if (directory / "metadata").exists():
            return Repository(directory)
        return Repository.create(
            directory,
            offline=self.director_keys,
            online=self.director_keys,
            now=self.clock.now(),
            online_roles=("root", "targets", "snapshot", "timestamp"),
        )

    def assign(self, device: str, release: str) -> None:
        """Name ``release`` (as the image repository has it) in the device's director.

        Raises:
            NotFoundError: the image repository has no such release.
        """
        targets = Repository(self.image_dir).load("targets").signed.targets
        info = targets.get(release)
        if info is None:
            raise NotFoundError(f"no release {release!r} in the image repository")
        repo = self.director(device)
        name = repo.directory.name
        repo.add_target(
            release,
            info=info,
            targets_key=load_signer(self.director_keys / f"{name}-targets.key"),
            snapshot_key=load_signer(self.director_keys / f"{name}-snapshot.key"),
            timestamp_key=load_signer(self.director_keys / f"{name}-timestamp.key"),
            now=self.clock.now(),
            replace_all=True,
        )

    def releases(self) -> list[dict[str, Any]]:
        """What the image repository holds (or the balena fleet's releases)."""
        if self.balena is not None:
            return self.balena.releases()
        try:
            targets = Repository(self.image_dir).load("targets").signed.targets
        except (OSError, IndexError, ValueError):
            return []
        return [
            {
                "name": name,
                "kind": name.split("-")[1],
                "version": name.removesuffix(".tar").split("-", 2)[-1],
                "length": t.length,
                "sha256": t.hashes.get("sha256", ""),
                "deltas": [
                    {"from": base, "length": targets[delta_name(name, base)].length}
                    for base in sorted(targets)
                    if delta_name(name, base) in targets
                ],
            }
            for name, t in sorted(targets.items())
            if name.endswith(".tar") and name.count("-") >= 2  # noqa: PLR2004
        ]

    def trust_anchors(self, device: str) -> tuple[bytes, bytes] | None:
        """The image and director root.json a node pins.

        None while there is no image repository and no key to make one.
        """
        if not (self.image_dir / "metadata").exists():
            if self.release_keys is None:
                return None
            Repository.create(
                self.image_dir,
                offline=self.release_keys,
                online=self.online_keys,
                now=self.clock.now(),
            )
        return Repository(self.image_dir).root_bytes(), self.director(
            device
        ).root_bytes()

    def publish(
        self, *, kind: str, version: str, min_from: str = "0", drill: bool = False
    ) -> dict[str, Any]:
        """Build this installation's code as a release and sign it in.

        Only where central holds the release signing key (``baling up``); a
        deployment keeps that key offline and publishes with ``baling
        release publish`` on the release manager's machine.

        Raises:
            ConflictError: no signing key here, or the release exists.
            InvalidError: an unknown kind or a malformed version.
        """
        if self.release_keys is None:
            raise ConflictError(
                "the release signing key is offline here; publish with "
                "`baling release publish`"
            )
        if not VERSION.fullmatch(version):
            raise InvalidError(f"expected a version like 1.2.0, got {version!r}")
        name = release_name(kind, version)
        if any(r["name"] == name for r in self.releases()):
            raise ConflictError(f"{name} is already published")
        archive = build(
            kind, version, min_from=min_from, out=self.root / "dist", drill=drill
        )
        publish(
            archive,
            repo_dir=self.image_dir,
            offline=self.release_keys,
            online=self.online_keys,
            now=self.clock.now(),
        )
        return next(r for r in self.releases() if r["name"] == name)

    # -- rollouts -------------------------------------------------------------------
    def start(
        self,
        session: Session,
        *,
        release: str,
        version: str,
        kind: str,
        site: str = "",
        group: str = "",
        from_version: str = "",
        plan: planner.Plan | None = None,
        by: str,
    ) -> RolloutRow:
        """Start a rollout to the devices the selector picks.

        Raises:
            NotFoundError: the release is not published.
            ConflictError: no device matches.
        """
        if release not in {r["name"] for r in self.releases()}:
            raise NotFoundError(f"no release {release!r} in the image repository")
        plan = plan or planner.Plan()
        query = select(Device).where(
            Device.kind == kind, col(Device.retired_at).is_(None)
        )
        if site:
            query = query.where(Device.site == site)
        devices = [
            d
            for d in session.exec(query.order_by(col(Device.id))).all()
            if (not group or group in d.groups)
            and (not from_version or d.version == from_version)
        ]
        devices.sort(key=lambda d: (not d.online, d.id))  # canaries that answer now
        pinned = frozenset(session.exec(select(Pin.device)).all())
        waves = planner.waves([d.id for d in devices], plan, pinned=pinned)
        if not waves:
            raise ConflictError(f"no {kind} device matches (pinned ones are left out)")
        now = self.clock.now()
        row = RolloutRow(
            release=release,
            version=version,
            kind=kind,
            selector={"site": site, "group": group, "from_version": from_version},
            plan=asdict(plan),
            waves=waves,
            created_by=by,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        for wave in waves:
            for device in wave:
                session.add(RolloutNode(rollout_id=int(row.id or 0), device=device))
        session.commit()
        session.refresh(row)
        return row

    def _load(self, session: Session, row: RolloutRow) -> planner.Rollout:
        nodes = session.exec(
            select(RolloutNode).where(RolloutNode.rollout_id == row.id)
        ).all()
        return planner.Rollout(
            planner.Plan(**row.plan),
            row.waves,
            {
                n.device: planner.Node(
                    device=n.device,
                    state=n.state,  # type: ignore[arg-type]
                    attempts=n.attempts,
                    assigned_at=None
                    if n.assigned_at is None
                    else as_utc(n.assigned_at),
                    reason=n.reason,
                )
                for n in nodes
            },
        )

    def step(self, session: Session, row: RolloutRow) -> Outbound:
        """Take the planner's next decision for one running rollout."""
        out = Outbound()
        now = self.clock.now()
        state = self._load(session, row)
        decision = planner.decide(state, now)
        for device in decision.assign:
            try:
                if self.balena is not None:  # balena's supervisor pulls it
                    self.balena.assign(device, row.release)
                    continue
                self.assign(device, row.release)
            except (NotFoundError, OSError, BalenaError) as exc:
                logger.warning("Cannot assign %s to %s: %s", row.release, device, exc)
                continue
            out.commands.append(
                ("ota", device, {"release": row.release, "rollout": row.id})
            )
        for node in session.exec(
            select(RolloutNode).where(RolloutNode.rollout_id == row.id)
        ).all():
            new = state.nodes[node.device]
            node.state, node.attempts, node.reason = new.state, new.attempts, new.reason
            node.assigned_at = new.assigned_at
        if decision.action in ("pause", "cancel"):
            row.state = "paused" if decision.action == "pause" else "cancelled"
            row.reason = decision.reason
            logger.warning(
                "Rollout %s %s itself: %s", row.id, row.state, decision.reason
            )
            out.audit.append(
                {
                    "actor": "system",
                    "action": f"rollout.{row.state}",
                    "target": row.release,
                    "detail": {"rollout": row.id, "reason": decision.reason},
                }
            )
        elif decision.action == "done":
            row.state = "done"
        row.updated_at = now
        out.live.append({"type": "rollout", **self.view(session, row)})
        return out

    def view(self, session: Session, row: RolloutRow) -> dict[str, Any]:
        """A rollout with its progress per wave."""
        nodes = {
            n.device: n
            for n in session.exec(
                select(RolloutNode).where(RolloutNode.rollout_id == row.id)
            ).all()
        }
        waves = []
        for number, wave in enumerate(row.waves, start=1):
            counts = {"pending": 0, "assigned": 0, "succeeded": 0, "failed": 0}
            for device in wave:
                counts[nodes[device].state] = counts.get(nodes[device].state, 0) + 1
            waves.append({"wave": number, "size": len(wave), **counts})
        return {
            "id": row.id,
            "release": row.release,
            "version": row.version,
            "kind": row.kind,
            # The district it targets ("": the county): the live stream shows
            # a rollout only to those who may read OTA there.
            "site": str(row.selector.get("site") or ""),
            "state": row.state,
            "reason": row.reason,
            "waves": waves,
            "touched": sum(n.state != "pending" for n in nodes.values()),
            "devices": len(nodes),
        }

    # -- node reports (inside the ingest transaction) --------------------------------
    def take(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Callable[[], None]:
        """Record each node's OTA step; finish nodes that committed or fell back."""
        del now
        changed: list[dict[str, Any]] = []
        for event in events:
            body = dict(event["body"])
            rid, fw = body.get("rollout"), str(body.get("state", ""))[:32]
            node = (
                session.get(RolloutNode, (rid, event["device"]))
                if isinstance(rid, int)
                else None
            )
            if node is not None:
                changed.append(self._record(node, fw, str(body.get("reason", ""))))
        return lambda: self.sender.deliver(Outbound(live=changed))

    def _record(self, node: RolloutNode, fw: str, reason: str) -> dict[str, Any]:
        """A node's report: its fw_state, and the outcome once it has one."""
        node.fw_state = fw
        node.updated_at = self.clock.now()
        if fw in DONE and node.state == "assigned":
            node.state = DONE[fw]
            node.reason = reason[:200]
        return {"type": "rollout_node", **self.node_view(node)}

    def _poll_balena(self, session: Session, row: RolloutRow) -> list[dict[str, Any]]:
        """Read what the balena devices run (balena sends no events)."""
        assert self.balena is not None  # noqa: S101 - only called with balena
        assigned = {
            n.device: n
            for n in session.exec(
                select(RolloutNode).where(
                    RolloutNode.rollout_id == row.id, RolloutNode.state == "assigned"
                )
            ).all()
        }
        if not assigned:
            return []
        outcomes = self.balena.outcomes(dict.fromkeys(assigned, row.release))
        return [
            self._record(assigned[device], fw, reason)
            for device, (fw, reason) in outcomes.items()
            if assigned[device].fw_state != fw or fw in DONE
        ]

    @staticmethod
    def node_view(node: RolloutNode) -> dict[str, Any]:
        """One node of a rollout, as the console shows it."""
        return {
            "rollout": node.rollout_id,
            "device": node.device,
            "state": node.state,
            "fw_state": node.fw_state,
            "reason": node.reason,
            "attempts": node.attempts,
            "updated_at": None
            if node.updated_at is None
            else as_utc(node.updated_at).isoformat(),
        }

    def tick(self, engine: sa.Engine) -> None:
        """Every few seconds: move each running rollout on."""
        if self.clock.monotonic() < self._next_tick:
            return
        self._next_tick = self.clock.monotonic() + self.tick_s
        with Session(engine) as session:
            out = Outbound()
            for row in session.exec(
                select(RolloutRow).where(RolloutRow.state == "running")
            ).all():
                if self.balena is not None:
                    try:
                        out.live += self._poll_balena(session, row)
                    except BalenaError as exc:
                        logger.warning("balena did not answer: %s", exc)
                        continue
                out.extend(self.step(session, row))
            session.commit()
        self.sender.deliver(out)
