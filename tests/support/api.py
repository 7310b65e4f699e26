"""Log in to central's API and register devices, the way most tests start.

``login`` takes either a FastAPI ``TestClient`` or a base URL of a served
app (then it speaks plain HTTP through httpx2, the project's one client);
``register`` puts devices in the registry directly, as a technician's
enrolment would. Making operators and starting central are left to the
fixtures that need them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import httpx2

if TYPE_CHECKING:
    import sqlalchemy as sa

TOKEN_PATH = "/api/v1/auth/token"


class LoginFailedError(AssertionError):
    """Central refused the credentials a test expected to work."""


class _Answer(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self) -> object: ...


class FormPoster(Protocol):
    """What ``login`` needs of a test client: a form POST (httpx's signature)."""

    def post(self, url: str, *, data: dict[str, str]) -> _Answer: ...


def token(target: FormPoster | str, user: str, password: str) -> str:
    """Log in as ``user`` and return the access token.

    Args:
        target: A ``TestClient`` on central's app, or the base URL
            (``http://127.0.0.1:PORT``) of a served one.
        user: The operator's username.
        password: Its password.

    Raises:
        LoginFailedError: central did not answer 200 with a token.

    Returns:
        The bearer token.
    """
    form = {"username": user, "password": password}
    answer: _Answer
    if isinstance(target, str):
        answer = httpx2.post(target.rstrip("/") + TOKEN_PATH, data=form, timeout=10)
    else:
        answer = target.post(TOKEN_PATH, data=form)
    if answer.status_code != 200:
        raise LoginFailedError(
            f"expected 200 logging in as {user!r}, got {answer.status_code}: "
            f"{answer.text[:200]}"
        )
    data = answer.json()
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise LoginFailedError(f"expected an access_token, got {data!r:.200}")
    return str(data["access_token"])


def login(target: FormPoster | str, user: str, password: str) -> dict[str, str]:
    """Log in as ``user``; return the ``Authorization`` header to send.

    Args:
        target: A ``TestClient`` on central's app, or a served app's base URL.
        user: The operator's username.
        password: Its password.

    Raises:
        LoginFailedError: central did not answer 200 with a token.

    Returns:
        ``{"Authorization": "Bearer …"}``.
    """
    return {"Authorization": f"Bearer {token(target, user, password)}"}


def register(
    engine: sa.Engine,
    *device_ids: str,
    kind: str = "sim",
    site: str = "",
    now: datetime | None = None,
) -> None:
    """Put devices in central's registry, one commit each.

    Args:
        engine: Central's database.
        *device_ids: The devices to add.
        kind: Their kind (``sim``, ``kiosk``, …).
        site: Their site, for district-scoped operators.
        now: Their registration time; the wall clock when not given.

    Raises:
        central.errors.ConflictError: an id is already registered.
        ValueError: a bad id or an unknown kind.
    """
    from sqlmodel import Session  # noqa: PLC0415 - keeps node tests free of central

    from central.fleet import registry  # noqa: PLC0415

    at = now or datetime.now(UTC)
    with Session(engine) as session:
        for device_id in device_ids:
            registry.register(
                session, device_id=device_id, kind=kind, site=site, now=at
            )
