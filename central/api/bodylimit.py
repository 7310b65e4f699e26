"""Request bodies bounded before they are read: an ASGI middleware.

A body is refused with 413 as soon as its declared ``Content-Length`` or the
bytes actually streamed pass the limit of its route: uploads (a suspect-list
import, Open311 media) get :attr:`BodyLimits.upload`, everything else
:attr:`BodyLimits.json`. Only a credential that verifies lifts the small
limits: a ``Bearer`` token whose HS256 signature and expiry check out (a
cheap check; sessions and roles are the routes'), or for Open311 an
``api_key`` in the query string that is one of the county's keys. A request
to an authenticated route without one may send only
:attr:`BodyLimits.anonymous` bytes, and an Open311 post without a key in
its query :attr:`BodyLimits.json`, so nobody without a credential makes
central buffer a large body (the route then answers 401 or 403 as usual).
Authentication itself, and what a body must contain, are left to the routes.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from starlette.exceptions import HTTPException

from central.errors import AuthError
from central.operators.auth import read_token

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
    # Paths (prefixes) anyone may post to without a token: login, enrolment,
    # Open311 citizens, phones reporting positions. (Kiosks sign with a node
    # credential, checked after the body: theirs stay under ``anonymous``.)
    open_paths: tuple[str, ...] = (
        "/api/v1/auth/",
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
        if upload and not authorized:
            return self.json, "an upload without a valid token or api_key in the query"
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
        authorized = _credential_holds(scope, headers.get(b"authorization", b""))
        limit, what = self.limits.limit(scope["path"], authorized=authorized)
        refusal = _declared(headers.get(b"content-length"), limit, what)
        if refusal is not None:
            await _refuse(send, *refusal, path=scope["path"])
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
                await _refuse(send, 413, str(exc.detail), path=scope["path"])


def _credential_holds(scope: Scope, authorization: bytes) -> bool:
    """Whether the request carries a credential that verifies (see the module)."""
    services = getattr(getattr(scope.get("app"), "state", None), "services", None)
    if services is None:
        return False
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            read_token(
                token.strip(),
                secret=services.settings.jwt_secret,
                now=services.clock.now(),
            )
        except AuthError:
            return False
        return True
    if not str(scope.get("path", "")).startswith("/open311/"):
        return False
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    given = query.get("api_key", [""])[0].encode()
    keys: list[str] = services.settings.open311_api_keys
    return bool(given) and any(hmac.compare_digest(given, k.encode()) for k in keys)


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


async def _refuse(send: Send, status: int, detail: str, *, path: str) -> None:
    content_type = b"application/json"
    if not path.startswith("/open311/"):
        body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    elif path.endswith(".xml"):  # the GeoReport spec's error list, as Open311 says
        content_type = b"text/xml; charset=utf-8"
        body = (
            "<?xml version='1.0' encoding='UTF-8'?>\n<errors><error>"
            f"<code>{status}</code><description>{escape(detail)}</description>"
            "</error></errors>"
        ).encode()
    else:
        error = [{"code": status, "description": detail}]
        body = json.dumps(error, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
