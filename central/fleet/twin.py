"""Policy documents in the database → desired configurations on the broker.

The shell around :mod:`central.fleet.policy`: stores new layer versions (refusing
one that would make any device's configuration invalid), recomputes each
device's desired configuration, records its version and publishes it
retained on ``config`` when it changed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session, col, func, select

from central.errors import PolicyError
from central.fleet.policy import DeviceFacts, Layer, check_layer, desired_config
from central.models import Device, PolicyLayer

if TYPE_CHECKING:
    from datetime import datetime

logger = logging.getLogger(__name__)


class ConfigPublisher(Protocol):
    """Where desired configurations go (the central link)."""

    def publish_config(
        self, device_id: str, *, version: str, values: dict[str, Any]
    ) -> None:
        """Publish one device's desired configuration."""
        ...


def current_layers(session: Session) -> list[Layer]:
    """Return the newest version of every layer."""
    newest = (
        select(
            PolicyLayer.scope,
            PolicyLayer.target,
            func.max(PolicyLayer.version).label("v"),
        )
        .group_by(col(PolicyLayer.scope), col(PolicyLayer.target))
        .subquery()
    )
    rows = session.exec(
        select(PolicyLayer).join(
            newest,
            (col(PolicyLayer.scope) == newest.c.scope)
            & (col(PolicyLayer.target) == newest.c.target)
            & (col(PolicyLayer.version) == newest.c.v),
        )
    ).all()
    return [
        Layer(scope=r.scope, target=r.target, version=r.version, values=r.values)
        for r in rows
    ]


def facts(device: Device) -> DeviceFacts:
    """What policy needs from a registry row."""
    return DeviceFacts(
        id=device.id, kind=device.kind, site=device.site, groups=tuple(device.groups)
    )


def put_layer(
    session: Session,
    *,
    scope: str,
    target: str,
    values: dict[str, Any],
    author: str,
    now: datetime,
) -> PolicyLayer:
    """Store a new version of a layer after checking every device still validates.

    Raises:
        PolicyError: the layer is malformed or would break some device's config.
    """
    layers = [
        la for la in current_layers(session) if (la.scope, la.target) != (scope, target)
    ]
    prior = session.exec(
        select(func.max(PolicyLayer.version)).where(
            PolicyLayer.scope == scope, PolicyLayer.target == target
        )
    ).one()
    layer = Layer(scope=scope, target=target, version=(prior or 0) + 1, values=values)
    check_layer(layer)
    layers.append(layer)
    for device in session.exec(select(Device)).all():
        desired_config(layers, facts(device))  # raises PolicyError naming the device
    row = PolicyLayer(
        scope=scope,
        target=target,
        version=layer.version,
        values=values,
        author=author,
        created_at=now,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def reconcile(
    session: Session,
    publisher: ConfigPublisher,
    *,
    force: bool = False,
    only: list[str] | None = None,
) -> int:
    """Publish desired configurations that changed (or all, with ``force``).

    Returns:
        How many devices were published.
    """
    layers = current_layers(session)
    stmt = select(Device)
    if only is not None:
        stmt = stmt.where(col(Device.id).in_(only))
    count = 0
    for device in session.exec(stmt).all():
        try:
            desired = desired_config(layers, facts(device))
        except PolicyError as exc:  # pragma: no cover - put_layer refuses these
            logger.error("No valid configuration for %s: %s", device.id, exc)  # noqa: TRY400
            continue
        if force or desired.version != device.desired_version:
            publisher.publish_config(
                device.id, version=desired.version, values=desired.values
            )
            device.desired_version = desired.version
            session.add(device)
            count += 1
    session.commit()
    return count
