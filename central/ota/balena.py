"""balena-cloud as an optional fleet backend behind the same rollouts.

Where a county already runs some nodes on balena, the rollout stays ours —
waves, canaries, thresholds that pause or cancel, pins — and only the
delivery changes: instead of naming the release in the node's director
repository and telling the node to look, the device is pinned to the
balena release (``balena-sdk``: ``device.pin_to_release``) and balena's
supervisor on the device pulls it (with balena's own deltas). balena
sends no events, so the service polls: a device running the release has
committed it, one balena reports as failed to update has failed.

Baling devices map to balena devices by name (a device's balena name is
its Baling id). Releases are balena release commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from central.errors import CentralError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable

    from balena import Balena

logger = logging.getLogger(__name__)

DEVICE_FIELDS = ["id", "uuid", "device_name", "is_online", "overall_status"]


class BalenaError(CentralError):
    """balena's API refused or did not answer; the message says what."""


@dataclass(frozen=True, slots=True)
class BalenaDevice:
    """What the rollout needs to know of a balena device."""

    uuid: str
    name: str
    online: bool
    status: str
    running: str  # the commit of the release it runs ("" if none)


def connect(token: str, *, host: str = "balena-cloud.com") -> Balena:
    """An SDK session with an API key; ``host`` names an openBalena instead.

    Settings stay in memory (nothing is written to the home directory).
    """
    from balena import Balena  # noqa: PLC0415 - an optional dependency

    sdk = Balena({"balena_host": host, "data_directory": False})
    sdk.auth.login_with_token(token)
    return sdk


class BalenaFleet:
    """One balena fleet (application) as a delivery backend for rollouts."""

    def __init__(self, sdk: Balena, fleet: str) -> None:
        self.sdk = sdk
        self.fleet = fleet

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:  # noqa: ANN401 - the API's JSON
        from balena.exceptions import BalenaException  # noqa: PLC0415
        from requests import RequestException  # noqa: PLC0415

        try:
            return fn()
        except (BalenaException, RequestException) as exc:
            raise BalenaError(f"balena {what} for {self.fleet}: {exc}") from exc

    def devices(self) -> list[BalenaDevice]:
        """The fleet's devices and the release each one runs."""
        rows: list[Any] = self._call(
            "device list",
            lambda: self.sdk.models.device.get_all_by_application(
                self.fleet,
                {
                    "$select": DEVICE_FIELDS,
                    "$expand": {"is_running__release": {"$select": ["commit"]}},
                },
            ),
        )
        out = []
        for row in rows:
            running = row.get("is_running__release") or []
            out.append(
                BalenaDevice(
                    uuid=str(row["uuid"]),
                    name=str(row["device_name"]),
                    online=bool(row.get("is_online")),
                    status=str(row.get("overall_status", "")),
                    running=str(running[0]["commit"]) if running else "",
                )
            )
        return out

    def releases(self) -> list[dict[str, Any]]:
        """The fleet's successful releases, newest first."""
        rows: list[Any] = self._call(
            "release list",
            lambda: self.sdk.models.release.get_all_by_application(
                self.fleet,
                {
                    "$select": ["id", "commit", "semver", "status", "created_at"],
                    "$filter": {"status": "success"},
                },
            ),
        )
        return [
            {
                "name": str(r["commit"]),
                "version": str(r.get("semver", "")),
                "backend": "balena",
            }
            for r in rows
        ]

    def assign(self, device: str, release: str) -> None:
        """Pin the balena device named ``device`` to release ``release``.

        Raises:
            NotFoundError: no device of that name in the fleet.
        """
        by_name = {d.name: d for d in self.devices()}
        if device not in by_name:
            raise NotFoundError(f"no balena device named {device!r} in {self.fleet}")
        uuid = by_name[device].uuid
        self._call("pin", lambda: self.sdk.models.device.pin_to_release(uuid, release))

    def outcomes(self, assigned: dict[str, str]) -> dict[str, tuple[str, str]]:
        """For devices told to run a release: ``fw_state`` and a reason.

        ``committed`` when the device runs it; ``failed`` when balena says
        the update stopped on an online device that still runs another
        release; ``downloading`` while balena is updating it.
        """
        out: dict[str, tuple[str, str]] = {}
        for d in self.devices():
            want = assigned.get(d.name)
            if want is None:
                continue
            if d.running == want:
                out[d.name] = ("committed", "")
            elif d.status == "updating":
                out[d.name] = ("downloading", "")
            elif d.online and d.status == "reduced-functionality":
                out[d.name] = ("failed", "balena: reduced functionality after update")
        return out
