"""Request bodies bounded before they are read: an ASGI middleware.

A body is refused with 413 as soon as its declared ``Content-Length`` or the
bytes actually streamed pass the limit of its route: uploads (a suspect-list
import, Open311 media) get :attr:`BodyLimits.upload`, everything else
:attr:`BodyLimits.json`. A request to an authenticated route that carries no
``Authorization`` header may send only :attr:`BodyLimits.anonymous` bytes,
so nobody without a token makes central buffer a large body (the route then
answers 401 as usual). Authentication itself, and what a body must contain,
are left to the routes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """How many bytes a request body may have, by kind of route."""

    json: int = 1 * MIB
    upload: int = 16 * MIB
    anonymous: int = 64 * KIB
    # Paths (prefixes) whose bodies are uploads.
    upload_paths: tuple[str, ...] = (
        "/api/v1/plates/suspects/import",
        "/open311/",
    )
    # Paths (prefixes) anyone may post to without a token: login, kiosks,
    # enrolment, Open311 citizens, phones reporting positions.
    open_paths: tuple[str, ...] = (
        "/api/v1/auth/",
        "/api/v1/kiosk/",
        "/api/v1/enrolment/",
        "/open311/",
        "/osmand",
    )

    def __post_init__(self) -> None:
        if not 0 < self.anonymous <= self.json <= self.upload:
            raise ValueError(
                "expected 0 < anonymous <= json <= upload, got "
                f"{self.anonymous}, {self.json}, {self.upload}"
            )

    def limit(self, path: str, *, authorized: bool) -> tuple[int, str]:
        """The limit for a request to ``path`` and what it is called."""
        upload = path.startswith(self.upload_paths)
        if not authorized and not path.startswith(self.open_paths):
            return self.anonymous, "a request without a token"
        if upload:
            return self.upload, "an upload"
        return self.json, "a request body"


class TooLargeError(HTTPException):
    """The streamed body passed its limit (an HTTP 413 wherever it surfaces).

    An HTTP exception, so FastAPI's body parsing passes it on as it is
    instead of turning it into "error parsing the body".
    """

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


class BodyLimitMiddleware:
    """Refuse request bodies over their route's limit, before the app reads them."""

    def __init__(self, app: ASGIApp, *, limits: BodyLimits | None = None) -> None:
        self.app = app
        self.limits = limits or BodyLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the bytes as they stream."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        authorized = b"authorization" in headers
        limit, what = self.limits.limit(scope["path"], authorized=authorized)
        refusal = _declared(headers.get(b"content-length"), limit, what)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLargeError(_message(limit, what, seen))
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except TooLargeError as exc:
            logger.warning("Refused %s %s: %s", scope["method"], scope["path"], exc)
            if not started:
                await _refuse(send, 413, str(exc.detail))


def _declared(value: bytes | None, limit: int, what: str) -> tuple[int, str] | None:
    """A refusal (status, detail) for a declared length, or ``None`` to go on."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return 400, f"expected a numeric Content-Length, got {value!r:.40}"
    if length > limit:
        return 413, _message(limit, what, length)
    return None


def _message(limit: int, what: str, got: int) -> str:
    return f"expected {what} of at most {limit} bytes, got {got} or more"


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
